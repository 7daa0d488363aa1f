"""Acceptance: one JBB run judged by `overseer judge --backend scripted:flip=0.2`, then measured by `overseer eval`,
by the TUI's stats function and by the optimizer's gate, gives one κ (the one sklearn computes); `eval` says so
when κ is undefined or the run was judged on another input. The CLI runs as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from overseer.optimize.optimizer import Gate
from overseer.store.runs import RunStore
from overseer.tui.stats import session_stats

JBB_FIELDS = ("--prompt-field", "goal", "--response-field", "response", "--label-field", "jailbroken")


def overseer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def jbb_subset(shared_data: Path, path: Path, keep: int, *, jailbroken: bool | None = None) -> Path:
    rows = [json.loads(line) for line in (shared_data / "jbb_calibration.jsonl").read_text().splitlines()]
    rows = [r for r in rows if jailbroken is None or r["jailbroken"] is jailbroken][:keep]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_tui_stats_and_gate_report_the_same_kappa(shared_data: Path, tmp_path: Path) -> None:
    data, ws = jbb_subset(shared_data, tmp_path / "jbb.jsonl", 200), str(tmp_path / "ws")
    judged = overseer("judge", str(data), *JBB_FIELDS, "--backend", "scripted:flip=0.2", "-w", ws)
    assert judged.returncode == 0, judged.stderr
    evaluated = overseer("eval", str(data), *JBB_FIELDS, "--json", "-w", ws)
    assert evaluated.returncode == 0, evaluated.stderr
    eval_kappa = json.loads(evaluated.stdout)["kappa"]

    store = RunStore(Path(ws) / "runs.sqlite")
    try:
        [run] = store.list_runs()
        samples = {s.id: s for s in store.samples(run.id)}
        results = list(store.results(run.id))
        truth = [samples[r.sample_id].reference_label for r in results]
        verdicts = [r.aggregate.label for r in results]
        assert len(results) == 200 and None not in verdicts  # no unscored: every policy sees the same pairs
        # The TUI: a human who agrees with every JailbreakBench label reviews every sample.
        for r, label in zip(results, truth, strict=True):
            store.record_review(run_id=run.id, sample_id=r.sample_id, label=str(label), reviewer="t", blind=True,
                                judge_label=r.aggregate.label)
        tui = session_stats(store, run.id)
    finally:
        store.close()
    _, _, gate = Gate(resamples=50).decide(truth, verdicts, verdicts, [], [], [])  # type: ignore[arg-type]
    expected = cohen_kappa_score(truth, verdicts)
    assert 0.3 < expected < 0.8  # a fifth flipped: far from both 0 and 1
    assert eval_kappa == pytest.approx(expected, abs=1e-12)
    assert tui["kappa"] == pytest.approx(expected, abs=1e-12)
    assert gate["kappa_val"] == pytest.approx(expected, abs=1e-12)


def test_eval_of_a_single_reference_class_says_kappa_is_undefined_without_a_warning(shared_data: Path,
                                                                                      tmp_path: Path) -> None:
    data, ws = jbb_subset(shared_data, tmp_path / "safe.jsonl", 40, jailbroken=False), str(tmp_path / "ws")
    assert overseer("judge", str(data), *JBB_FIELDS, "--backend", "scripted:echo", "-w", ws).returncode == 0
    text = overseer("eval", str(data), *JBB_FIELDS, "-w", ws)
    assert text.returncode == 0, text.stderr
    assert "Cohen's κ = undefined (the reference has a single class" in text.stdout
    assert "Warning" not in text.stdout + text.stderr
    as_json = json.loads(overseer("eval", str(data), *JBB_FIELDS, "--json", "-w", ws).stdout)
    assert as_json["kappa"] is None and "single class" in as_json["kappa_undefined"] and as_json["accuracy"] == 1.0


def test_eval_of_a_run_judged_on_another_input_says_so(shared_data: Path, tmp_path: Path) -> None:
    judged_on = jbb_subset(shared_data, tmp_path / "a.jsonl", 10)
    other = tmp_path / "b.jsonl"
    other.write_text('{"id": "x1", "goal": "g", "response": "r", "jailbroken": true}\n', encoding="utf-8")
    ws = str(tmp_path / "ws")
    assert overseer("judge", str(judged_on), *JBB_FIELDS, "--backend", "scripted:echo", "-w", ws).returncode == 0
    store = RunStore(Path(ws) / "runs.sqlite")
    try:
        [run] = store.list_runs()
    finally:
        store.close()
    result = overseer("eval", str(other), *JBB_FIELDS, "--run", run.id, "-w", ws)
    assert result.returncode != 0 and "n = 0" not in result.stdout
    message = result.stdout + result.stderr
    assert "none of their ids is among the 1 sample(s)" in message and str(judged_on) in message
    assert "Traceback" not in message
