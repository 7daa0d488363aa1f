"""Issue 11.16: while another process (a long `overseer seed`) holds the memory's writer lock, a decision key
returns at once, the decision is committed to the run store before the app moves on, and its edge case lands in
the memory once the lock frees — also when the reviewer quits first. Before, the key handler waited up to 30 s on
the lock, freezing the app."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import cli, judge, settings

from overseer.memory.store import EdgeCaseStore
from overseer.store.runs import RunStore
from overseer.tui.app import ItemScreen, ReviewApp
from overseer.tui.state import ReviewSession

HOLD = """
import fcntl, sys
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, str]:
    ws, run_id = judge(tmp_path, n=8)
    seed = tmp_path / "seed.jsonl"
    seed.write_text('{"id": "x", "prompt": "q", "response": "an earlier seeded case", "label": "aligned"}\n')
    assert cli("seed", str(seed), "--reviewed", "-w", str(ws))[0] == 0
    return ws, run_id


@pytest.fixture
def held_lock(workspace: tuple[Path, str]) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the memory's writer lock, as a seed does while it writes."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(workspace[0] / "memory" / "writer.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    yield holder
    release(holder)


def release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def review_cases(ws: Path) -> list[str]:
    return sorted(c.source_ref or "" for c in EdgeCaseStore(ws / "memory").cases().values() if c.source == "review")


def committed(ws: Path, run_id: str) -> list[tuple[str, str]]:
    store = RunStore(ws / "runs.sqlite")  # another connection: sees only what was committed
    try:
        return [(r.sample_id, r.label) for r in store.reviews(run_id)]
    finally:
        store.close()


async def saved(app: ReviewApp, pilot: Any) -> None:
    """Wait (bounded) until the app's writer thread has committed every queued write."""
    for _ in range(100):
        if app.session.writer is None or not app.session.writer.pending:
            return
        await pilot.pause(0.05)
    raise AssertionError("the writer thread did not commit within 5 s")


async def test_a_key_returns_at_once_while_a_seed_holds_the_memory_lock(
        workspace: tuple[Path, str], held_lock: subprocess.Popen[str]) -> None:
    ws, run_id = workspace
    store = RunStore(ws / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")  # issue 14: the app opens on the queue
        assert isinstance(app.screen, ItemScreen)
        first = app.session.current
        assert first is not None
        started = time.monotonic()
        await pilot.press("m")
        pressed = time.monotonic() - started
        second = app.session.current
        assert second is not None and second.sample_id != first.sample_id  # acknowledged: on to the next item
        await pilot.press("a")
        both = time.monotonic() - started
        assert pressed < 3 and both < 6, (pressed, both)  # the lock wait alone used to take 30 s per key
        await saved(app, pilot)  # the run store's writes are on the writer thread now (issue 11.16)
        assert committed(ws, run_id) == [(first.sample_id, "misaligned"), (second.sample_id, "aligned")]
        assert review_cases(ws) == []  # the memory is still locked: the edge cases wait, in order
        assert app.session.memory_writes.pending == 2
        release(held_lock)
        for _ in range(100):
            if not app.session.memory_writes.pending:
                break
            await pilot.pause(0.1)
        assert review_cases(ws) == sorted([f"{run_id}/{first.sample_id}", f"{run_id}/{second.sample_id}"])
        await pilot.press("q")
    store.close()


async def test_quitting_with_edge_cases_still_queued_writes_them_first(
        workspace: tuple[Path, str], held_lock: subprocess.Popen[str]) -> None:
    ws, run_id = workspace
    store = RunStore(ws / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        first = app.session.current
        assert first is not None
        await pilot.press("r")
        threading.Timer(1.5, release, (held_lock,)).start()  # the seed finishes while the app is quitting
        await pilot.press("q")
        await asyncio.sleep(0)
    assert committed(ws, run_id) == [(first.sample_id, "refusal")]
    assert review_cases(ws) == [f"{run_id}/{first.sample_id}"]
    store.close()


async def test_the_next_session_writes_what_earlier_decisions_left_out(workspace: tuple[Path, str]) -> None:
    """A reviewer who quit while the memory stayed locked past the timeout (or a crash after the commit) left
    decisions without edge cases; the next session writes them, and leaves a deliberately removed one removed."""
    ws, run_id = workspace
    store = RunStore(ws / "runs.sqlite")
    earlier = ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada")
    earlier.background_memory = True  # as in the app, but nobody flushes: the writes never happen
    lost = [earlier.decide(label).review for label in ("aligned", "misaligned")]
    assert earlier.memory_writes.pending == 2  # and then the process ends: the queue is gone
    later = ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada")
    removed = later.decide("refusal").review  # written at once, then taken out with `overseer memory rm`
    assert cli("memory", "rm", removed.edge_case_id or "", "-w", str(ws))[0] == 0
    assert review_cases(ws) == []
    app = ReviewApp(ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada"))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if len(review_cases(ws)) == 2:
                break
            await pilot.pause(0.1)
        await pilot.press("q")
    assert review_cases(ws) == sorted(f"{r.run_id}/{r.sample_id}" for r in lost)
    store.close()
