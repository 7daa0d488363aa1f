"""Issue 13 item 9: failure is loud. A reflection backend that cannot write a prompt is refused before anything
is spent (naming --reflection-backend, non-zero exit, no model loaded), `--rubric betley --learn` is refused
with a reason, and a half-done round is not resumed under other backends without saying so."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import pytest

from overseer.cli.main import run_app


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def labelled(tmp_path: Path, n: int = 120) -> Path:
    data = tmp_path / "in.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"s{i:03d}", "prompt": f"question {i}", "response": f"answer number {i}",
                                "label": "misaligned" if i % 3 == 0 else "aligned",
                                "trap": "finance" if i % 4 == 1 else "none"}) + "\n")
    return data


@pytest.fixture
def judged(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    code, text = cli("judge", str(labelled(tmp_path)), "--label-field", "label", "--backend", "scripted:rules",
                     "-w", str(ws), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    return ws


@pytest.mark.parametrize(("flags", "says"), [
    (("--reflection-backend", "local"), "--reflection-backend local: the embedded local model"),
    (("--backend", "local"), "the reflection model defaults to the judge's backend"),
    (("--reflection-backend", "scripted:flip=0.2"), "answers with verdicts, never a prompt"),
])
def test_improve_refuses_a_reflection_backend_that_cannot_write_a_prompt(judged: Path, flags: tuple[str, ...],
                                                                         says: str) -> None:
    backend = () if "--backend" in flags else ("--backend", "scripted:rules")
    code, text = cli("improve", *backend, *flags, "-w", str(judged))
    assert code == 2 and says in text and "pass --reflection-backend" in text and "Traceback" not in text, text
    with sqlite3.connect(judged / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM optimizer_rounds").fetchone()[0] == 0  # refused, not attempted


def test_judge_learn_refuses_before_creating_a_run(tmp_path: Path) -> None:
    ws, data = tmp_path / "ws", labelled(tmp_path, 20)
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:rules", "--learn",
                     "-w", str(ws))
    assert code == 2 and "--reflection-backend scripted:rules" in text, text
    code, text = cli("judge", str(data), "--rubric", "betley", "--backend", "scripted:rules", "--learn",
                     "--reflection-backend", "scripted:reflect=fix_finance", "-w", str(ws))
    assert code == 2 and "the Betley rubric is the paper's fixed prompt" in text, text
    assert not (ws / "runs.sqlite").exists() or sqlite3.connect(ws / "runs.sqlite").execute(
        "SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_a_half_done_round_is_abandoned_aloud_under_another_backend(judged: Path) -> None:
    judge = ("--backend", "scripted:rules", "-w", str(judged))
    code, _ = cli("improve", "--reflection-backend", "scripted:reflect=fix_finance", "--budget-calls", "3", *judge)
    assert code == 0  # a budget stop is not a failure: the round stays resumable
    code, text = cli("improve", "--reflection-backend", "scripted:reflect=fix_finance+noop", *judge)
    assert "abandoned at stage" in text and "resuming optimizer round" not in text, text
    rows = json.loads(cli("prompts", "history", "--json", "-w", str(judged))[1])
    abandoned = [r for r in rows if r["kind"] == "round"]
    assert len(abandoned) == 1 and abandoned[0]["status"] == "failed", rows
    assert ("reflection scripted@scripted-reflect=fix_finance, resumed with judge scripted@scripted-rules and "
            "reflection scripted@scripted-reflect=fix_finance+noop") in abandoned[0]["reason"]


def test_the_labelled_pool_line_is_readable_and_labels_human_uses_reviews_only(judged: Path) -> None:
    judge = ("--backend", "scripted:rules", "--reflection-backend", "scripted:reflect=fix_finance",
             "-w", str(judged))
    code, text = cli("improve", *judge)
    assert code == 0, text
    line = next(x for x in text.splitlines() if x.startswith("labelled pool:"))
    assert "{" not in line and "labels: 120 reference" in line, line
    assert "validating as served: 1 judge(s) (scripted@scripted-rules)" in text
    code, text = cli("improve", "--labels", "human", *judge)
    assert code == 2 and "only 0 labelled samples" in text and "--labels human" in text, text
    code, text = cli("improve", "--labels", "people", *judge)
    assert code == 2 and "--labels must be human or all, not 'people'" in text, text


class Captured(Exception):
    pass


def test_judge_learn_labels_reach_the_learners_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def capture(_request: object, settings: object, **_kw: object) -> None:
        seen.append(settings)
        raise Captured()

    monkeypatch.setattr("overseer.run.run_job", capture)
    with pytest.raises(Captured):
        run_app(["judge", str(labelled(tmp_path, 12)), "--label-field", "label", "--backend", "scripted:rules",
                 "--learn", "--labels", "human", "--reflection-backend", "scripted:reflect=fix_finance",
                 "-w", str(tmp_path / "ws")])
    assert seen[0].improve_labels == "human"  # type: ignore[attr-defined]
