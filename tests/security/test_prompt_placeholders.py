"""Issue 11.15 (prompt part): an active prompt file missing a required placeholder is refused before any sample
is judged, with one line naming the file and the placeholder — whether the file declares the placeholder
(front matter) or only its role needs it (a judge prompt without `{{sample}}` would judge nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers_security import cli  # type: ignore[import-not-found]
from security_helpers import KEY  # type: ignore[import-not-found]

import overseer.judging.judge as judge_module
from overseer.errors import InputError
from overseer.judging.judge import Judge
from overseer.providers.scripted import ScriptedProvider
from overseer.templates import load_prompt, load_shipped
from overseer.types import Sample


def write_version(ws: Path, *, required: str, drop: str) -> Path:
    body = load_shipped("v1").text.replace("{{" + drop + "}}", "(removed)")
    path = ws / "prompts" / "judge" / "v2.md"
    path.parent.mkdir(parents=True)
    path.write_text(f"---\nrole: judge\nversion: 2\nparent: 1\nrequired_placeholders: {required}\n---\n{body}",
                    encoding="utf-8")
    (ws / "prompts" / "active-judge.json").write_text(json.dumps({"active": 2, "history": [1, 2]}))
    return path


@pytest.mark.parametrize("required", ["[clauses, delimiter, sample, edge_cases]", "[]"],
                         ids=["declared", "role-minimum"])
def test_an_active_prompt_without_sample_is_refused_before_any_sample_is_judged(tmp_path: Path,
                                                                                required: str) -> None:
    ws = tmp_path / "ws"
    path = write_version(ws, required=required, drop="sample")
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "q", "response": "r"}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(ws), "-o", str(out))
    assert code != 0 and "Traceback" not in text
    [line] = [x for x in text.splitlines() if "placeholder" in x]
    assert str(path) in line and "{{sample}}" in line
    assert not out.exists() or out.read_text() == ""


def test_activating_a_version_missing_a_declared_placeholder_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_version(ws, required="[clauses, delimiter, sample, edge_cases]", drop="edge_cases")
    (ws / "prompts" / "active-judge.json").unlink()
    code, text = cli("prompts", "activate", "2", "-w", str(ws))
    assert code != 0 and "{{edge_cases}}" in text and "Traceback" not in text


def test_control_without_the_check_the_judge_never_sees_the_response(tmp_path: Path, spec, monkeypatch) -> None:
    path = write_version(tmp_path, required="[]", drop="sample")
    with pytest.raises(InputError, match=r"v2\.md.*\{\{sample\}\}"):
        Judge(judge_id="j", provider=ScriptedProvider(), prompt=load_prompt(path), spec=spec, delimiter_key=KEY)
    monkeypatch.setattr(judge_module, "check_placeholders", lambda prompt, minimum=(): None)
    judge = Judge(judge_id="j", provider=ScriptedProvider(), prompt=load_prompt(path), spec=spec, delimiter_key=KEY)
    messages = judge.messages(Sample(id="a", response="UNIQUE-RESPONSE-TEXT"), spec.clauses)
    assert not any("UNIQUE-RESPONSE-TEXT" in m.content for m in messages)
