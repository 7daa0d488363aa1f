"""`overseer improve` and `overseer judge --learn` end to end (scripted judge and reflection: see
test_optimizer.py for why their gains are real within the simulation)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest


def overseer(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"}, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "pool.jsonl"
    with path.open("w") as f:
        for i in range(200):
            record = {"id": f"p{i:03d}", "prompt": f"question {i}", "response": f"answer number {i}, in words",
                      "label": "misaligned" if i % 3 == 0 else "aligned"}
            if i % 4 == 1:
                record["trap"] = "finance"
            f.write(json.dumps(record) + "\n")
    return path


def versions(workspace: Path) -> list[str]:
    folder = workspace / "prompts" / "judge"
    return sorted(p.name for p in folder.glob("v*.md")) if folder.exists() else []


def test_kill_9_during_improve_resumes_without_repeating_calls_or_duplicating_versions(
        tmp_path: Path, labelled: Path) -> None:
    base = tmp_path / "base"
    assert overseer("judge", str(labelled), "--label-field", "label", "--backend", "scripted:rules",
                    "-w", str(base)).returncode == 0
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    shutil.copytree(base, clean)
    shutil.copytree(base, crashed)

    def improve_args(workspace: Path, calls: Path) -> list[str]:
        return ["improve", "--backend", f"scripted:rules,latency=0.05,count={calls}", "--reflection-backend",
                "scripted:reflect=fix_finance", "-w", str(workspace)]

    uninterrupted = overseer(*improve_args(clean, tmp_path / "clean_calls.txt"))
    assert uninterrupted.returncode == 0 and "accepted" in uninterrupted.stdout, uninterrupted.stderr
    calls_without_crash = len((tmp_path / "clean_calls.txt").read_text().splitlines())

    calls = tmp_path / "calls.txt"
    proc = subprocess.Popen([sys.executable, "-m", "overseer", *improve_args(crashed, calls)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the round is validating, then pull the plug
        with sqlite3.connect(crashed / "runs.sqlite") as db:
            stage = db.execute("SELECT stage FROM optimizer_rounds").fetchone()
        if stage and stage[0] == "decide" or proc.poll() is not None:
            break
        if stage and stage[0] == "validate" and calls.exists() and len(calls.read_text().splitlines()) > 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert versions(crashed) == []  # killed before the decision

    resumed = overseer(*improve_args(crashed, calls))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming optimizer round" in resumed.stderr and "accepted" in resumed.stdout
    assert versions(crashed) == ["v2.md"]
    assert len(calls.read_text().splitlines()) <= calls_without_crash + 8  # + at most the calls in flight
    again = overseer(*improve_args(crashed, calls))  # a later round starts fresh and writes no duplicate
    assert again.returncode == 0 and versions(crashed) in (["v2.md"], ["v2.md", "v3.md"])


def test_learn_changes_the_prompt_mid_run_and_reports_agreement_per_version(tmp_path: Path, labelled: Path) -> None:
    result = overseer("judge", str(labelled), "--label-field", "label", "--backend", "scripted:rules", "--learn",
                      "--learn-every", "20", "--reflection-backend", "scripted:reflect=fix_finance",
                      "--concurrency", "4", "--json", "-w", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    per_version = summary["agreement_by_prompt_version"]
    assert len(per_version) == 2, per_version  # v1 for the first samples, v2 after the accepted rewrite
    v1 = next(m for v, m in per_version.items() if v.startswith("judge@v1:"))
    v2 = next(m for v, m in per_version.items() if v.startswith("judge@v2:"))
    assert v2["kappa"] > v1["kappa"]
    assert v1["n"] >= 20 and v1["n"] + v2["n"] == 200
