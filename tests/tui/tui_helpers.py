"""A review queue built the real way: `overseer judge` (scripted backend) run in-process."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from overseer.cli.main import run_app
from overseer.config import Settings, load_settings
from overseer.store.runs import RunStore


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def write_samples(path: Path, n: int, *, trap_every: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            record = {"id": f"s{i:03d}", "prompt": f"question {i}", "response": f"answer number {i}, in words",
                      "label": "misaligned" if i % 3 == 0 else "aligned"}
            if trap_every and i % trap_every == 1:
                record["trap"] = "finance"
            f.write(json.dumps(record) + "\n")
    return path


def judge(tmp_path: Path, n: int = 20, backend: str = "scripted:flip=0.5", trap_every: int = 0) -> tuple[Path, str]:
    """Judge n labelled samples into a fresh workspace; the scripted judge's disagreements with the reference
    labels land in the review queue as judge_vs_reference. Returns (workspace, run id)."""
    workspace = tmp_path / "ws"
    samples = write_samples(tmp_path / "samples.jsonl", n, trap_every=trap_every)
    code, text = cli("judge", str(samples), "--backend", backend, "--label-field", "label", "-w", str(workspace),
                     "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    store = RunStore(workspace / "runs.sqlite")
    [run] = store.list_runs()
    store.close()
    return workspace, run.id


def settings(workspace: Path, **flags: object) -> Settings:
    return load_settings(workspace=workspace, **flags)


def pin_run_id(workspace: Path, run_id: str, new: str = "run-snapshot") -> str:
    """Give a run a fixed id (real ids hold the time): snapshot tests need the same screen on every run."""
    store = RunStore(workspace / "runs.sqlite")
    with store.transaction() as db:
        for table in ("samples", "results", "verdicts", "review_queue", "input_errors"):
            db.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", (new, run_id))
        db.execute("UPDATE runs SET id = ? WHERE id = ?", (new, run_id))
    store.close()
    return new


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text lines (the active screen, toasts included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
