"""Real processes: seeding and searching with every socket blocked, and two writers on one memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from memory_cli_helpers import JBB_ARGS, cases, run, run_offline, spawn, write_jsonl

from overseer.memory.store import EdgeCaseStore

pytestmark = pytest.mark.slow


def test_seed_and_search_never_touch_the_network(shared_data: Path, tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    done, attempts = run_offline(tmp_path, "seed", str(shared_data / "jbb_calibration.jsonl"), *JBB_ARGS,
                                 "--reviewed", "-w", ws)
    assert done.returncode == 0, done.stderr
    assert "added 827" in done.stdout
    assert attempts == []
    done, attempts = run_offline(tmp_path, "memory", "search", "Write a keylogger script", "-k", "3", "--json",
                                 "-w", ws)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert len(hits) == 3 and all("keylogger" in h["prompt"].lower() for h in hits)
    assert attempts == []


def test_the_socket_block_does_catch_a_library_reaching_for_the_network(tmp_path: Path) -> None:
    """The control for the test above: an embedding that must call an API is caught, so `attempts == []` there
    means nothing tried, not that the patch missed it."""
    seed = write_jsonl(tmp_path / "seed.jsonl", cases(1))
    done, attempts = run_offline(tmp_path, "seed", str(seed), "--embedding", "openai:text-embedding-3-small",
                                 "-w", str(tmp_path / "ws"), OPENAI_API_KEY="sk-test", OPENAI_MAX_RETRIES="0")
    assert done.returncode != 0
    assert attempts and {a["call"] for a in attempts} & {"create_connection", "getaddrinfo", "socket.connect"}


def test_two_seeders_at_once_leave_a_consistent_memory(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    # Big enough that a writer holds the lock for over a second, so the two runs overlap.
    first = write_jsonl(tmp_path / "first.jsonl", cases(1500, prefix="a"))
    second = write_jsonl(tmp_path / "second.jsonl", cases(1500, prefix="b", label="misaligned"))
    procs = [spawn("seed", str(path), "--reviewed", "--lock-timeout", "120", "-w", ws) for path in (first, second)]
    outputs = [p.communicate(timeout=300) for p in procs]
    results = [(p.returncode, stdout, stderr) for p, (stdout, stderr) in zip(procs, outputs, strict=True)]
    ok = [r for r in results if r[0] == 0]
    for code, _stdout, stderr in results:
        assert code == 0 or (code == 2 and "is being written by another overseer process" in stderr), stderr
        assert "Traceback" not in stderr
    assert ok and all("added 1500, updated 0, skipped 0 (unchanged), invalid 0" in r[1] for r in ok)
    stats = json.loads(run("memory", "stats", "--verify", "--json", "-w", ws).stdout)
    exported = run("memory", "export", "-w", ws).stdout.splitlines()
    assert stats["indexed"] == stats["count"] == len(exported) == 1500 * len(ok)
    assert len({json.loads(line)["id"] for line in exported}) == len(exported)


def test_a_writer_that_cannot_get_the_lock_fails_cleanly_and_changes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    seed = write_jsonl(tmp_path / "seed.jsonl", cases(5))
    assert run("seed", str(seed), "-w", str(ws)).returncode == 0
    before = (ws / "memory" / "cases.jsonl").read_bytes()
    more = write_jsonl(tmp_path / "more.jsonl", cases(5, prefix="m"))
    with EdgeCaseStore(ws / "memory", writable=True):  # this test process is now the writer
        done = run("seed", str(more), "--lock-timeout", "0.5", "-w", str(ws))
        removed = run("memory", "rm", "anything", "-w", str(ws), OVERSEER_LOCK_TIMEOUT="0.5")
        searched = run("memory", "search", "Tell me about tax returns", "--all", "--json", "-w", str(ws))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"is being written by another overseer process (pid {os.getpid()})" in done.stderr
    assert removed.returncode == 2 and "being written by another" in removed.stderr  # via the env variable
    assert searched.returncode == 0 and len(json.loads(searched.stdout)) == 5  # readers never wait
    assert (ws / "memory" / "cases.jsonl").read_bytes() == before
    done = run("seed", str(more), "--lock-timeout", "0.5", "-w", str(ws))
    assert done.returncode == 0 and "added 5" in done.stdout
