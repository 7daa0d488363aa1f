"""`overseer judge` ends with why the rates are what they are and the commands to run next (issue 15.2)."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import cli, write_samples


def test_judge_prints_why_and_next(tmp_path: Path):
    data = write_samples(tmp_path / "in.jsonl", 6)
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:flip=0.5", "-w",
                     str(tmp_path / "ws"), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    assert "next:" in text and f"overseer eval {data} --label-field label --run run-" in text
    assert "overseer report run-" in text
