"""ARCH 12 + issue 6 item 5: kill -9 (a real SIGKILL to a subprocess) mid-write, then reopen: nothing lost,
nothing duplicated.

The other two crash points are covered where their code is tested, and not repeated here:
- judge: tests/cli/test_resume.py::test_kill_9_at_half_then_resume_gives_every_id_once_and_bills_at_most_n_plus_c
  (every id exactly once, at most N + C calls billed, a torn last output line repaired) and
  ::test_results_committed_but_never_written_reach_the_output_on_resume;
- improve: tests/optimize/test_improve_cli.py::test_kill_9_during_improve_resumes_without_repeating_calls_or_
  duplicating_versions.
This file covers `overseer seed` and the review session behind `overseer review`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import cli, env, overseer

pytestmark = pytest.mark.slow


def write_cases(path: Path, n: int) -> Path:
    topics = ["bread", "taxes", "chess", "decorators", "tides", "jazz", "bicycles", "volcanoes", "knitting"]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            topic = topics[i % len(topics)]
            f.write(json.dumps({"id": f"c{i}", "prompt": f"Tell me about {topic} (part {i})",
                                "response": f"A short note on {topic}, number {i}.",
                                "label": "aligned" if i % 3 else "misaligned"}) + "\n")
    return path


def wait_until(check, proc: subprocess.Popen, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, f"finished before the kill: {proc.communicate()}"
        time.sleep(0.01)
    raise AssertionError("the condition never held")


def memory_state(ws: Path) -> tuple[int, list[str]]:
    stats = overseer("memory", "stats", "--verify", "--json", "-w", str(ws))
    assert stats.returncode == 0, stats.stderr
    exported = overseer("memory", "export", "-w", str(ws))
    assert exported.returncode == 0, exported.stderr
    return json.loads(stats.stdout)["indexed"], [json.loads(line)["id"] for line in exported.stdout.splitlines()]


@pytest.mark.parametrize("kill_at_lines", [1, 4000])
def test_kill_9_during_seed_then_reseed_loses_and_duplicates_nothing(tmp_path: Path, kill_at_lines: int) -> None:
    n, ws = 8000, tmp_path / "ws"
    seed_file = write_cases(tmp_path / "big.jsonl", n)
    log = ws / "memory" / "cases.jsonl"
    args = ("seed", str(seed_file), "--label-field", "label", "--reviewed", "-w", str(ws))
    proc = subprocess.Popen([sys.executable, "-m", "overseer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())

    def logged_lines() -> int:
        return log.read_bytes().count(b"\n") if log.exists() else 0

    wait_until(lambda: logged_lines() >= kill_at_lines, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < logged_lines() < n  # really killed mid-seed

    # The log (the source of truth) holds whole records only, each once.
    _count, ids = memory_state(ws)
    assert len(ids) == len(set(ids)) and 0 < len(ids) < n

    # Reseeding the same file completes: the first writer repairs and replays the log, then adds the rest.
    done = overseer(*args)
    assert done.returncode == 0, done.stderr
    assert f"added {n - len(ids)}, updated 0, skipped {len(ids)} (unchanged), invalid 0" in done.stdout
    count, after = memory_state(ws)
    assert count == len(after) == len(set(after)) == n  # stats (the index) == export (the log): nothing lost
    assert set(ids) <= set(after)


def test_right_after_a_kill_9_during_seed_readers_see_what_the_log_holds(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    seed_file = write_cases(tmp_path / "big.jsonl", 4000)
    log = ws / "memory" / "cases.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "overseer", "seed", str(seed_file), "--label-field", "label",
                             "--reviewed", "-w", str(ws)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())
    wait_until(lambda: log.exists() and log.stat().st_size > 0, proc)  # first batch logged, not yet indexed
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    count, ids = memory_state(ws)
    assert count == len(ids), f"index holds {count}, log {len(ids)}"


# A review session that decides items in queue order and says which, one line per committed decision.
REVIEWER = '''
import sys
from overseer.config import load_settings
from overseer.store.runs import RunStore
from overseer.tui.state import ReviewSession

workspace, run_id = sys.argv[1], sys.argv[2]
settings = load_settings(workspace=workspace)
store = RunStore(settings.workspace / "runs.sqlite")
session = ReviewSession(store, settings, run_id=run_id, with_memory=False, reviewer="tester")
while (row := session.current) is not None and row.status == "pending":
    session.decide("aligned" if len(row.sample_id) % 2 else "misaligned", note="decided before the crash")
    print(row.sample_id, flush=True)
'''


def test_kill_9_during_review_keeps_every_decision_once_and_resumes_at_the_first_undecided(tmp_path: Path) -> None:
    from overseer.config import load_settings
    from overseer.store.runs import RunStore
    from overseer.tui.state import ReviewSession

    ws, data = tmp_path / "ws", tmp_path / "in.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for i in range(600):
            f.write(json.dumps({"id": f"s{i:04d}", "prompt": f"q{i}", "response": f"answer {i}",
                                "label": "misaligned" if i % 2 else "aligned"}) + "\n")
    code, text = cli("judge", str(data), "--backend", "scripted:flip=1.0", "--label-field", "label", "--json",
                     "-w", str(ws))  # every verdict disagrees with its reference label: all 600 go to review
    assert code == 0, text
    run_id = json.loads(text[text.index("{"):])["run_id"]

    def session() -> tuple[RunStore, ReviewSession]:
        store = RunStore(ws / "runs.sqlite")
        return store, ReviewSession(store, load_settings(workspace=ws), run_id=run_id, with_memory=False)

    store, before = session()
    order = [row.sample_id for row in before.rows(0, before.total)]
    store.close()
    assert len(order) == 600

    script = tmp_path / "reviewer.py"
    script.write_text(REVIEWER, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(ws), run_id], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    printed: list[str] = []
    assert proc.stdout is not None
    while len(printed) < 150:
        line = proc.stdout.readline()
        assert line, f"the reviewer stopped early: {proc.communicate()}"
        printed.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store, after = session()
    try:
        rows = store.db.execute("SELECT sample_id, status, note FROM reviews WHERE run_id = ? ORDER BY id",
                                (run_id,)).fetchall()
        decided = [sample for sample, _, _ in rows]
        assert len(decided) == len(set(decided))  # nothing decided twice
        assert all(status == "active" and note == "decided before the crash" for _, status, note in rows)
        # Every decision reported before the kill is there; at most one more was committed but not yet printed.
        assert decided[:len(printed)] == printed and len(decided) - len(printed) in (0, 1)
        assert decided == order[:len(decided)]  # decided in queue order, no gaps
        assert after.current is not None and after.current.sample_id == order[len(decided)]  # first undecided
        assert after.counts()["done"] == len(decided) and after.counts()["pending"] == 600 - len(decided)
    finally:
        store.close()
