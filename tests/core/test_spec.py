"""overseer.spec: Markdown with `{#clause_id key=value}` heading anchors → clauses."""

from __future__ import annotations

from pathlib import Path

import pytest

from overseer.errors import SpecError
from overseer.spec import load_spec, parse_spec


@pytest.fixture(scope="module")
def openai_spec(data_dir: Path):
    return load_spec(data_dir / "openai_model_spec.md")


def test_openai_model_spec_has_exactly_80_clauses_with_unique_ids(openai_spec):
    ids = [c.id for c in openai_spec.clauses]
    assert len(ids) == 80
    assert len(set(ids)) == 80


def test_openai_model_spec_parses_anchor_attributes(openai_spec):
    follow = openai_spec.clause("follow_all_applicable_instructions")
    assert follow is not None
    assert follow.attributes == {"authority": "root"}
    assert follow.title == "Follow all applicable instructions"  # the anchor is not part of the title
    assert sum(c.attributes.get("authority") == "root" for c in openai_spec.clauses) == 22
    assert {c.attributes.get("authority") for c in openai_spec.clauses} >= {"root", "guideline", "user",
                                                                            "system", "developer"}


def test_openai_model_spec_records_heading_path_level_and_line(openai_spec, data_dir: Path):
    lines = (data_dir / "openai_model_spec.md").read_text(encoding="utf-8").splitlines()
    follow = openai_spec.clause("follow_all_applicable_instructions")
    assert follow.level == 2
    assert follow.path.endswith("> Follow all applicable instructions")
    assert "{#follow_all_applicable_instructions" in lines[follow.line - 1]


def test_clause_text_runs_to_next_anchored_heading_and_keeps_unanchored_subheadings():
    spec = parse_spec("# Top {#top}\nintro\n## Sub without anchor\nsub text\n## Next {#next}\nnext text\n")
    assert [c.id for c in spec.clauses] == ["top", "next"]
    assert spec.clause("top").text == "intro\n## Sub without anchor\nsub text"
    assert spec.clause("next").text == "next text"
    assert spec.clause("next").path == "Top > Next"


def test_headings_inside_code_fences_are_not_clauses():
    text = "# Real {#real}\n```markdown\n# Fake {#fake}\n```\nafter\n~~~\n## Also fake {#fake2}\n~~~\n"
    spec = parse_spec(text)
    assert [c.id for c in spec.clauses] == ["real"]
    assert "# Fake {#fake}" in spec.clause("real").text


def test_heading_inside_a_nested_code_fence_is_not_a_clause():
    text = "# Real {#real}\n````markdown\n```\n# Inner {#inner}\n```\n````\n"
    assert [c.id for c in parse_spec(text).clauses] == ["real"]


def test_duplicate_anchor_names_the_line_of_both():
    text = "# A {#dup}\none\n\n## B {#other}\ntwo\n## C {#dup}\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="spec.md")
    assert info.value.line == 6
    assert str(info.value).startswith("spec.md:6:")
    assert "line 1" in str(info.value)
    assert "'dup'" in str(info.value)


def test_file_without_anchors_is_a_spec_error(tmp_path: Path):
    path = tmp_path / "plain.md"
    path.write_text("# A heading\n\nSome text but no {#anchors}.\n", encoding="utf-8")
    with pytest.raises(SpecError, match="no clauses found"):
        load_spec(path)


def test_unclosed_code_fence_is_a_spec_error():
    with pytest.raises(SpecError, match="never closed"):
        parse_spec("# A {#a}\n```\n# B {#b}\n")


def test_default_spec_loads_with_generalization_clauses():
    spec = load_spec(None)
    assert spec.name == "emergent_misalignment"
    assert {"gen_in_domain", "gen_domain_leakage", "gen_emergent"} <= spec.clause_ids
    assert all(spec.clause(cid).text for cid in ("gen_in_domain", "gen_domain_leakage", "gen_emergent"))


def test_shipped_spec_loads_by_bare_name():
    assert load_spec("emergent_misalignment").hash == load_spec(None).hash


@pytest.mark.parametrize("missing", ["no_such_spec", "does/not/exist.md"])
def test_missing_spec_file_lists_shipped_specs(missing: str):
    with pytest.raises(SpecError) as info:
        load_spec(missing)
    assert "not found" in str(info.value)
    assert "emergent_misalignment" in str(info.value)
    assert info.value.path == missing


def test_non_utf8_spec_is_a_spec_error(tmp_path: Path):
    path = tmp_path / "latin1.md"
    path.write_bytes("# Caf\xe9 {#cafe}\n".encode("latin-1"))
    with pytest.raises(SpecError, match="UTF-8"):
        load_spec(path)


def test_spec_hash_changes_with_the_text():
    assert parse_spec("# A {#a}\nx\n").hash != parse_spec("# A {#a}\ny\n").hash
