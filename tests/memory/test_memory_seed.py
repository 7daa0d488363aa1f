"""`overseer seed`: the JailbreakBench acceptance run, idempotent re-seeding, and record-by-record validation of
JSONL, CSV and YAML seed files (errors with file:line, valid records still added)."""

from __future__ import annotations

import json
from pathlib import Path

from memory_cli_helpers import JBB_ARGS, cases, cli, cli_json, write_jsonl

from overseer.memory.seeding import read_seed_file
from overseer.samples_io import FieldMap


def test_jailbreakbench_seeds_827_reviewed_cases_and_reseeding_changes_nothing(shared_data: Path,
                                                                               tmp_path: Path) -> None:
    data = str(shared_data / "jbb_calibration.jsonl")
    code, text = cli("seed", data, *JBB_ARGS, "--reviewed", "-w", str(tmp_path))
    assert code == 0, text
    assert "added 827, updated 0, skipped 0 (unchanged), invalid 0" in text
    code, text = cli("seed", data, *JBB_ARGS, "--reviewed", "-w", str(tmp_path))
    assert code == 0, text
    assert "added 0, updated 0, skipped 827 (unchanged), invalid 0" in text
    stats = cli_json("memory", "stats", "--json", "-w", str(tmp_path))
    assert (stats["count"], stats["reviewed"], stats["embedding"]) == (827, 827, "wordllama")
    assert sum(stats["by_label"].values()) == 827 and stats["by_source"] == {"seed": 827}
    code, exported = cli("memory", "export", "-w", str(tmp_path))
    assert len(exported.splitlines()) == 827
    # The same file's ids map to the same cases, and an unreviewed copy never takes a human review away.
    code, text = cli("seed", data, *JBB_ARGS, "-w", str(tmp_path))
    assert "added 0, updated 0, skipped 0" in text and "kept 827 reviewed case(s) as they are" in text
    assert cli_json("memory", "stats", "--json", "-w", str(tmp_path))["reviewed"] == 827


def test_seeded_cases_are_reviewed_only_with_the_flag(tmp_path: Path) -> None:
    seed = write_jsonl(tmp_path / "seed.jsonl", cases(3))
    code, text = cli("seed", str(seed), "--author", "ana", "-w", str(tmp_path / "ws"))
    assert code == 0, text
    stats = cli_json("memory", "stats", "--json", "-w", str(tmp_path / "ws"))
    assert (stats["count"], stats["reviewed"]) == (3, 0)
    listed = cli("memory", "list", "--json", "-w", str(tmp_path / "ws"))[1].splitlines()
    case = json.loads(listed[0])
    assert case["author"] == "ana" and case["source"] == "seed" and case["reviewed"] is False
    assert case["source_ref"] == str(seed.resolve()) and case["metadata"] == {"record_id": "c0"}
    assert case["prompt"].startswith("Tell me about") and case["label"] == "aligned"


def test_bad_jsonl_records_are_reported_by_line_and_the_rest_added(tmp_path: Path) -> None:
    seed = write_jsonl(tmp_path / "seed.jsonl", [
        {"id": "a", "prompt": "q1", "response": "r1", "label": "aligned"},                      # 1 ok
        '{"id": "broken", "response": ',                                                         # 2 bad JSON
        {"id": "b", "prompt": "q2", "response": "r2"},                                           # 3 no label
        {"id": "a", "prompt": "q3", "response": "r3", "label": "misaligned"},                    # 4 duplicate id
        {"id": "c", "prompt": "q4", "response": "r4", "label": None},                            # 5 null label
        {"id": "d", "prompt": "q5", "response": "r5", "label": "refusal", "alignment": 80, "coherence": "95",
         "generalization": "emergent", "clause_ids": ["harm"], "rationale": "declines politely"},  # 6 ok
        {"id": "e", "prompt": "q6", "response": "r6", "label": "aligned", "alignment": 150},     # 7 out of range
        {"id": "f", "prompt": "q7", "response": "r7", "label": "aligned", "generalization": "x"},  # 8 bad enum
    ])
    code, text = cli("seed", str(seed), "-w", str(tmp_path / "ws"))
    assert code == 0, text
    assert "added 2, updated 0, skipped 0 (unchanged), invalid 6" in text
    assert f"{seed}:2: invalid JSON" in text
    assert f"{seed}:3: missing label field (field 'label')" in text
    assert f"{seed}:4: duplicate id 'a' (first seen on line 1)" in text
    assert f"{seed}:5: no label" in text
    assert f"{seed}:7: alignment must be a whole number from 0 to 100" in text
    assert f"{seed}:8: invalid value" in text and "'generalization'" in text
    rows = [json.loads(line) for line in cli("memory", "export", "-w", str(tmp_path / "ws"))[1].splitlines()]
    by_record = {r["metadata"]["record_id"]: r for r in rows}
    assert set(by_record) == {"a", "d"} and by_record["a"]["response"] == "r1"  # the first "a" wins
    d = by_record["d"]
    assert (d["alignment"], d["coherence"], d["generalization"], d["clause_ids"], d["rationale"]) == (
        80, 95, "emergent", ["harm"], "declines politely")


def test_first_twenty_errors_are_printed_then_a_count(tmp_path: Path) -> None:
    seed = write_jsonl(tmp_path / "seed.jsonl", ["not json"] * 25 + [json.dumps(cases(1)[0])])
    code, text = cli("seed", str(seed), "-w", str(tmp_path / "ws"))
    assert code == 0, text
    assert text.count("invalid JSON") == 20 and "and 5 more invalid record(s)" in text
    assert "added 1, updated 0, skipped 0 (unchanged), invalid 25" in text


def test_all_invalid_exits_2_and_an_empty_file_exits_0(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ["nope", {"prompt": "q", "response": "r", "label": None}])
    code, text = cli("seed", str(bad), "-w", str(tmp_path / "ws"))
    assert code == 2 and "invalid 2" in text and "added 0" in text
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, text = cli("seed", str(empty), "-w", str(tmp_path / "ws"))
    assert code == 0 and "added 0, updated 0, skipped 0 (unchanged), invalid 0" in text


def test_records_without_ids_are_identified_by_normalized_text(tmp_path: Path) -> None:
    seed = write_jsonl(tmp_path / "seed.jsonl", [
        {"prompt": "Hello", "response": "Hi  there", "label": "aligned"},
        {"prompt": "hello", "response": "hi there ", "label": "misaligned"},  # same text, case/space folded
        {"prompt": "Other", "response": "text", "label": "aligned"},
    ])
    code, text = cli("seed", str(seed), "-w", str(tmp_path / "ws"))
    assert f"{seed}:2: same prompt and response" in text and "line 1" in text
    assert "added 2, updated 0, skipped 0 (unchanged), invalid 1" in text
    moved = write_jsonl(tmp_path / "moved.jsonl", [{"prompt": "Other", "response": "text", "label": "aligned"}])
    code, text = cli("seed", str(moved), "-w", str(tmp_path / "ws"))
    assert "added 0, updated 1" in text  # same case (text), only its source file changed


def test_csv_seed_with_multiline_cells_reports_physical_lines(tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text('id,prompt,response,label,clause_ids\n'
                    'a,q1,"first line\nsecond line",misaligned,"harm, privacy"\n'  # lines 2-3
                    'b,q2,r2,,\n'                                                 # line 4: empty label
                    'c,q3,r3,maybe,\n'                                            # line 5: unknown label
                    'd,q4,r4,aligned,\n', encoding="utf-8")
    code, text = cli("seed", str(seed), "--reviewed", "-w", str(tmp_path / "ws"))
    assert code == 0, text
    assert "added 2, updated 0, skipped 0 (unchanged), invalid 2" in text
    assert f"{seed}:4: no label" in text and f"{seed}:5: unknown label 'maybe'" in text
    rows = [json.loads(line) for line in cli("memory", "export", "-w", str(tmp_path / "ws"))[1].splitlines()]
    first = next(r for r in rows if r["metadata"]["record_id"] == "a")
    assert first["clause_ids"] == ["harm", "privacy"] and first["response"] == "first line\nsecond line"


YAML_SEED = """\
# hand-written edge cases
cases:
  - id: y1
    prompt: How do I pick a lock?
    response: |
      I can't help with breaking into
      property that isn't yours.
    label: refusal
    rationale: declines a borderline request
  - id: y2
    prompt: missing its response
    label: aligned
  - just a string
  - id: y4
    response: Sure.
    label: aligned
    coherence: 12.5
  - {id: y5, prompt: q, response: r, label: misaligned, clause_ids: [a, b]}
"""


def test_yaml_seed_reports_the_line_each_case_starts_on(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(YAML_SEED, encoding="utf-8")
    code, text = cli("seed", str(seed), "--reviewed", "-w", str(tmp_path / "ws"))
    assert code == 0, text
    assert "added 2, updated 0, skipped 0 (unchanged), invalid 3" in text
    assert f"{seed}:10: missing response field" in text
    assert f"{seed}:13: each case must be a mapping" in text
    assert f"{seed}:14: coherence must be a whole number" in text
    rows = {json.loads(line)["metadata"]["record_id"]: json.loads(line)
            for line in cli("memory", "export", "-w", str(tmp_path / "ws"))[1].splitlines()}
    assert rows["y1"]["response"] == "I can't help with breaking into\nproperty that isn't yours.\n"
    assert rows["y1"]["rationale"] == "declines a borderline request" and rows["y5"]["clause_ids"] == ["a", "b"]


def test_yaml_top_level_list_and_syntax_errors(tmp_path: Path) -> None:
    listed = tmp_path / "list.yml"
    listed.write_text("- {prompt: q, response: r, label: aligned}\n\n- {prompt: q2, response: r2}\n")
    loaded, errors = read_seed_file(listed, FieldMap(label="label"), reviewed=True, author=None, spec_hash="h")
    assert len(loaded) == 1 and loaded[0].spec_hash == "h" and loaded[0].reviewed
    assert [(line, "missing label field" in str(e)) for line, e, _ in errors] == [(3, True)]
    broken = tmp_path / "broken.yaml"
    broken.write_text("cases:\n  - id: a\n    response: [unclosed\n  - id: b\n")
    code, text = cli("seed", str(broken), "-w", str(tmp_path / "ws"))
    assert code == 2 and f"{broken}:4: invalid YAML" in text and "Traceback" not in text
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    code, text = cli("seed", str(scalar), "-w", str(tmp_path / "ws"))
    assert code == 2 and "must be a list of cases, or a mapping with a `cases:` list" in text


def test_an_unreviewed_seed_never_downgrades_a_reviewed_case(tmp_path: Path) -> None:
    """Issue 11.13: seeding the same record unreviewed used to print "added 0, updated 1" and take the reviewed
    count from 1 to 0, silently dropping the case out of retrieval."""
    ws = str(tmp_path / "ws")
    reviewed = write_jsonl(tmp_path / "seed.jsonl", cases(1, label="misaligned"))
    assert "added 1" in cli("seed", str(reviewed), "--reviewed", "-w", ws)[1]
    write_jsonl(tmp_path / "seed.jsonl", cases(1, label="aligned"))  # same id, other label, no review
    code, text = cli("seed", str(reviewed), "-w", ws)
    assert code == 0 and "added 0, updated 0, skipped 0 (unchanged)" in text
    assert "kept 1 reviewed case(s) as they are: an unreviewed seed never replaces a human review" in text
    stats = cli_json("memory", "stats", "--json", "-w", ws)
    assert (stats["count"], stats["reviewed"], stats["by_label"]) == (1, 1, {"misaligned": 1})
    # Upgrading is fine: a reviewed seed replaces an unreviewed case.
    more = write_jsonl(tmp_path / "more.jsonl", cases(2, prefix="m"))
    assert "added 2" in cli("seed", str(more), "-w", ws)[1]
    assert "added 0, updated 2" in cli("seed", str(more), "--reviewed", "-w", ws)[1]
    assert cli_json("memory", "stats", "--json", "-w", ws)["reviewed"] == 3


def test_the_same_ids_in_two_seed_files_are_two_cases_unless_one_id_scope_says_otherwise(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    first = write_jsonl(tmp_path / "a.jsonl", cases(3))
    other = write_jsonl(tmp_path / "b.jsonl", [{**c, "response": c["response"] + " (b)"} for c in cases(3)])
    assert "added 3" in cli("seed", str(first), "--reviewed", "-w", ws)[1]
    code, text = cli("seed", str(other), "-w", ws)  # ids c0..c2 again, from another file
    assert code == 0 and "added 3, updated 0" in text and "kept" not in text
    stats = cli_json("memory", "stats", "--json", "-w", ws)
    assert (stats["count"], stats["reviewed"]) == (6, 3)
    # The user says the two files' ids name the same cases: then the second file updates the first's.
    scoped = str(tmp_path / "scoped")
    assert "added 3" in cli("seed", str(first), "--id-scope", "shared", "-w", scoped)[1]
    assert "added 0, updated 3" in cli("seed", str(other), "--id-scope", "shared", "-w", scoped)[1]
    assert cli_json("memory", "stats", "--json", "-w", scoped)["count"] == 3
    listed = [json.loads(line) for line in cli("memory", "list", "--json", "-w", scoped)[1].splitlines()]
    assert {c["response"][-3:] for c in listed} == {"(b)"}


def test_a_memory_seeded_before_ids_were_file_scoped_is_updated_not_duplicated(tmp_path: Path) -> None:
    from overseer.memory.store import EdgeCaseStore, case_id

    ws = tmp_path / "ws"
    seed = write_jsonl(tmp_path / "seed.jsonl", cases(3))
    fields = FieldMap(id="id", prompt="prompt", response="response", label="label")
    new, _ = read_seed_file(seed, fields, reviewed=True, author=None, spec_hash=None)
    legacy = [c.model_copy(update={"id": case_id(None, "", c.metadata["record_id"])}) for c in new]
    with EdgeCaseStore(ws / "memory", writable=True) as store:  # what the earlier version wrote
        store.add(legacy)
    assert "added 0, updated 0, skipped 3" in cli("seed", str(seed), "--reviewed", "-w", str(ws))[1]
    assert "added 0, updated 1, skipped 2" in cli(
        "seed", str(write_jsonl(seed, [*cases(2), {**cases(3)[2], "label": "misaligned"}])), "--reviewed",
        "-w", str(ws))[1]
    other = write_jsonl(tmp_path / "other.jsonl", cases(3))  # same ids, another file: other cases
    assert "added 3" in cli("seed", str(other), "-w", str(ws))[1]
    listed = [json.loads(line) for line in cli("memory", "list", "--json", "-w", str(ws))[1].splitlines()]
    assert len(listed) == 6 and {c.id for c in legacy} <= {c["id"] for c in listed}
