"""Crash safety of `overseer judge`: kill -9 and Ctrl-C mid-run, then --resume (real subprocesses, real signals)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from cli_helpers import output_ids, run, spawn, write_samples


def wait_for_lines(path: Path, at_least: int, proc, timeout: float = 120) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            count = path.read_bytes().count(b"\n")
            if count >= at_least:
                return count
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {at_least} lines")


def run_status(workspace: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(workspace / "runs.sqlite") as db:
        return list(db.execute("SELECT id, status FROM runs"))


def test_kill_9_at_half_then_resume_gives_every_id_once_and_bills_at_most_n_plus_c(tmp_path: Path) -> None:
    n, concurrency = 2000, 32
    data = write_samples(tmp_path / "in.jsonl", n)
    out, calls, ws = tmp_path / "out.jsonl", tmp_path / "calls.txt", tmp_path / "ws"
    backend = f"scripted:echo,latency=0.1,count={calls}"
    args = ("judge", str(data), "--backend", backend, "--concurrency", str(concurrency), "-o", str(out),
            "-w", str(ws))
    proc = spawn(*args)
    wait_for_lines(out, n // 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with out.open("ab") as f:
        f.write(b'{"version": 1, "run_id": "torn", "sample_id": "s0')  # a write cut short by the crash
    assert 0 < len(output_ids_before := out.read_bytes().split(b"\n")) - 1 < n, len(output_ids_before)

    resumed = run(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "repaired a torn last output line" in resumed.stderr
    ids = output_ids(out)
    assert sorted(ids) == sorted(f"s{i:05d}" for i in range(n))  # every id exactly once
    billed = calls.read_text().splitlines()
    assert len(billed) <= n + concurrency, len(billed)
    assert [status for _, status in run_status(ws)] == ["finished"]


def test_ctrl_c_leaves_a_resumable_run_and_says_how(tmp_path: Path) -> None:
    n = 400
    data = write_samples(tmp_path / "in.jsonl", n)
    out, ws = tmp_path / "out.jsonl", tmp_path / "ws"
    args = ("judge", str(data), "--backend", "scripted:echo,latency=0.1", "--concurrency", "8", "-o", str(out),
            "-w", str(ws))
    # A shell's background job (`cmd &`, nohup) inherits SIGINT ignored, and Python then installs no Ctrl-C
    # handler; reset it so the test sees what a user at a terminal gets, however CI was launched.
    proc = spawn(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_lines(out, 40, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume run-" in stderr
    assert [status for _, status in run_status(ws)] == ["interrupted"]
    done_before = len(output_ids(out))
    assert 0 < done_before < n

    resumed = run(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before}/{n} already judged" in resumed.stderr
    assert sorted(output_ids(out)) == sorted(f"s{i:05d}" for i in range(n))


def test_results_committed_but_never_written_reach_the_output_on_resume(tmp_path: Path) -> None:
    """A crash between the store commit and the output write: resume copies the missing lines over."""
    data = write_samples(tmp_path / "in.jsonl", 30)
    out, ws = tmp_path / "out.jsonl", tmp_path / "ws"
    first = run("judge", str(data), "--backend", "scripted:echo", "-o", str(out), "-w", str(ws), "--json")
    run_id = json.loads(first.stdout)["run_id"]
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:10]) + "\n")
    with sqlite3.connect(ws / "runs.sqlite") as db:
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
    resumed = run("judge", str(data), "--backend", "scripted:echo", "-o", str(out), "-w", str(ws), "--resume",
                  run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(output_ids(out)) == sorted(f"s{i:05d}" for i in range(30))


def recorded_config(workspace: Path) -> list[str]:
    with sqlite3.connect(workspace / "runs.sqlite") as db:
        return [row[0] for row in db.execute("SELECT config_json FROM runs")]


def test_sigterm_leaves_an_interrupted_resumable_run_like_ctrl_c(tmp_path: Path) -> None:
    """Issue 11.7: SIGTERM (what `kill`, systemd and container runtimes send) left the run `running`."""
    n = 400
    data = write_samples(tmp_path / "in.jsonl", n)
    out, ws = tmp_path / "out.jsonl", tmp_path / "ws"
    args = ("judge", str(data), "--backend", "scripted:echo,latency=0.1", "--concurrency", "8", "-o", str(out),
            "-w", str(ws))
    proc = spawn(*args)
    wait_for_lines(out, 40, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "--resume run-" in stderr and "Traceback" not in stderr
    assert [status for _, status in run_status(ws)] == ["interrupted"]
    done_before = len(output_ids(out))
    assert 0 < done_before < n

    resumed = run(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before}/{n} already judged" in resumed.stderr
    assert sorted(output_ids(out)) == sorted(f"s{i:05d}" for i in range(n))


@pytest.mark.parametrize(("sig", "moment"), [
    (signal.SIGKILL, "run created"), (signal.SIGKILL, "mid-run"),
    (signal.SIGINT, "run created"), (signal.SIGINT, "mid-run"),
    (signal.SIGTERM, "run created"), (signal.SIGTERM, "mid-run"),
])
def test_any_stop_then_bare_resume_judges_every_id_once_bills_nothing_twice_and_keeps_the_settings(
        tmp_path: Path, sig: signal.Signals, moment: str) -> None:
    """Issue 11 acceptance: kill -9, SIGINT or SIGTERM at any moment, then the command the interrupt message
    prints (bare --resume, no backend flag): every id once, no finished sample re-billed, settings unchanged."""
    n, concurrency = 300, 16
    data = write_samples(tmp_path / "in.jsonl", n)
    out, calls, ws = tmp_path / "out.jsonl", tmp_path / "calls.txt", tmp_path / "ws"
    backend = f"scripted:flip=0.3,latency=0.05,count={calls}"
    proc = spawn("judge", str(data), "--backend", backend, "--concurrency", str(concurrency), "-o", str(out),
                 "-w", str(ws), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    def reached() -> bool:
        if moment == "mid-run":
            return out.exists() and out.read_bytes().count(b"\n") >= n // 2
        # The first moment there is something to resume: the run and its samples are stored.
        if not (ws / "runs.sqlite").exists():
            return False
        with sqlite3.connect(ws / "runs.sqlite", timeout=10) as db:
            try:
                return db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == n
            except sqlite3.OperationalError:  # the schema is not there yet
                return False

    deadline = time.monotonic() + 120
    while not reached():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    config = recorded_config(ws)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    statuses = [status for _, status in run_status(ws)]
    assert statuses == (["running"] if sig == signal.SIGKILL else ["interrupted"]), proc.returncode

    billed_before = len(calls.read_text().splitlines()) if calls.exists() else 0
    with sqlite3.connect(ws / "runs.sqlite") as db:
        finished = {r[0] for r in db.execute("SELECT sample_id FROM results")}
    resumed = run("judge", str(data), "-w", str(ws), "--resume")  # what the interrupt message says to run
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(output_ids(out)) == sorted(f"s{i:05d}" for i in range(n))  # every id exactly once
    billed = calls.read_text().splitlines()
    assert not finished & set(billed[billed_before:])  # no finished sample is billed again
    assert len(billed) <= n + concurrency, len(billed)  # at most the calls in flight at the stop, again
    assert recorded_config(ws) == config  # the run's recorded settings are unchanged
    assert [status for _, status in run_status(ws)] == ["finished"]
    with sqlite3.connect(ws / "runs.sqlite") as db:
        judges = [r[0] for r in db.execute("SELECT DISTINCT judge_id FROM verdicts")]
    assert judges == [json.loads(config[0])["judges"][0]["id"]]  # one judge: the recorded one
