"""`prompts history` shows rounds that proposed no candidate — failed (a reflection backend that cannot reflect)
and interrupted (a budget ran out mid-round) — with their reason, besides the candidates' table with κ on
validation (used for selection) and κ on the test split (the unbiased figure)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from overseer.cli.main import run_app


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def workspace(tmp_path: Path) -> Path:
    data, ws = tmp_path / "in.jsonl", tmp_path / "ws"
    with data.open("w", encoding="utf-8") as f:
        for i in range(120):
            f.write(json.dumps({"id": f"s{i:03d}", "prompt": f"question {i}", "response": f"answer number {i}",
                                "label": "misaligned" if i % 3 == 0 else "aligned",
                                "trap": "finance" if i % 4 == 1 else "none"}) + "\n")
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:rules", "-w", str(ws),
                     "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    return ws


def test_failed_and_interrupted_rounds_and_test_kappa_appear_in_history(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace(tmp_path)
    judge = ("--backend", "scripted:rules", "-w", str(ws))
    # A rule that replies with verdicts, never a prompt, is now refused before any round starts (issue 13 item 9;
    # this test used it to make a failed round): the failed round comes from a reflection model that errors.
    code, text = cli("improve", "--reflection-backend", "scripted:flip=0.2", *judge)
    assert code == 2 and "--reflection-backend scripted:flip=0.2" in text and "Traceback" not in text, text
    monkeypatch.setenv("OVERSEER_MAX_ATTEMPTS", "1")
    code, text = cli("improve", "--reflection-backend", "scripted:reflect=fix_finance,errors=1", *judge)
    assert code == 2 and "failed" in text and "--reflection-backend" in text, text
    monkeypatch.delenv("OVERSEER_MAX_ATTEMPTS")
    cli("improve", "--reflection-backend", "scripted:reflect=fix_finance", "--budget-calls", "3", *judge)
    code, text = cli("prompts", "history", "-w", str(ws))
    assert code == 0, text
    lines = [line for line in text.splitlines() if line.startswith("round round-")]
    assert len(lines) == 2, text
    assert "failed — OverseerError: the reflection model (scripted@" in lines[0]
    assert "interrupted before stage" in lines[1] and "resumes it" in lines[1]
    rows = json.loads(cli("prompts", "history", "--json", "-w", str(ws))[1])
    assert [(r["kind"], r["status"]) for r in rows] == [("round", "failed"), ("round", "interrupted")]
    assert "--reflection-backend" in rows[0]["reason"]

    code, text = cli("improve", "--reflection-backend", "scripted:reflect=fix_finance", *judge)  # resumes, accepts
    assert code == 0 and "accepted" in text, text
    code, text = cli("prompts", "history", "-w", str(ws))
    assert "κ test (unbiased" in text and "κ val (selection)" in text
    assert sum(line.startswith("round round-") for line in text.splitlines()) == 1  # the resumed one left the list
