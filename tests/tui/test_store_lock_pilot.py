"""Issue 11.16 (the run store's half): while another connection holds the run store's write lock
(`BEGIN IMMEDIATE`, as a judge run or `overseer improve` does while it commits), a decision key returns at once,
the decision is committed — in key order — once the lock is released, "saved" is shown only after the commit, and
quitting first waits for the queued decisions. Before, `ItemScreen.action_decide` wrote in the key handler and
froze the app for up to the store's 30 s busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import judge, screen_text, settings

from overseer.store.runs import RunStore
from overseer.tui.app import ItemScreen, ReviewApp
from overseer.tui.state import ReviewSession


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, str]:
    return judge(tmp_path, n=8)


@pytest.fixture
def held(workspace: tuple[Path, str]) -> Iterator[sqlite3.Connection]:
    """Another connection holding the run store's write lock until the test releases it."""
    conn = sqlite3.connect(workspace[0] / "runs.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    if conn.in_transaction:
        conn.rollback()
    conn.close()


def committed(ws: Path, run_id: str) -> list[tuple[str, str]]:
    store = RunStore(ws / "runs.sqlite")  # another connection: sees only what was committed
    try:
        return [(r.sample_id, r.label) for r in store.reviews(run_id)]
    finally:
        store.close()


async def wait_saved(app: ReviewApp, pilot: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while app.session.writer is not None and app.session.writer.pending:
        assert time.monotonic() < deadline, "the writer did not commit in time"
        await pilot.pause(0.05)
    await pilot.pause()


async def test_a_key_returns_at_once_while_the_run_store_is_locked(workspace: tuple[Path, str],
                                                                   held: sqlite3.Connection) -> None:
    ws, run_id = workspace
    store = RunStore(ws / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada", with_memory=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        assert isinstance(app.screen, ItemScreen)
        pending = app.session.counts()["pending"]
        first = app.session.current
        assert first is not None
        started = time.monotonic()
        await pilot.press("m")
        pressed = time.monotonic() - started
        second = app.session.current
        assert second is not None and second.sample_id != first.sample_id  # acknowledged: on to the next item
        await pilot.press("a")
        both = time.monotonic() - started
        assert pressed < 3 and both < 6, (pressed, both)  # a held lock used to cost up to 30 s per key
        await pilot.pause(1.5)  # past the writer's short lock wait: it has told the reviewer
        assert committed(ws, run_id) == []  # nothing is committed while the lock is held ...
        assert app.session.writer is not None and app.session.writer.pending == 2
        assert "saving 2" in screen_text(app) and "saved" not in screen_text(app).replace("saving", "")
        assert any("locked by another process" in n for n in app.notices)
        assert app.session.counts()["pending"] == pending - 2  # ... but both items count as handled already
        held.rollback()  # the other process finishes
        await wait_saved(app, pilot)
        assert committed(ws, run_id) == [(first.sample_id, "misaligned"), (second.sample_id, "aligned")]
        assert f"saved {second.sample_id} = aligned" in screen_text(app)
        await pilot.press("q")
    store.close()


async def test_quit_waits_for_the_queued_decisions(workspace: tuple[Path, str], held: sqlite3.Connection) -> None:
    ws, run_id = workspace
    store = RunStore(ws / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada", with_memory=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        first = app.session.current
        assert first is not None and app.session.total >= 3
        await pilot.press("r", "s", "i")  # a decision, a skip and a decision, all while locked
        threading.Timer(1.5, held.rollback).start()  # the lock frees while the app is quitting
        await pilot.press("q")
        await asyncio.sleep(0)
    reviews = committed(ws, run_id)
    assert [label for _, label in reviews] == ["refusal", "incoherent"] and reviews[0][0] == first.sample_id
    assert len(store.review_items(run_id, status="skipped")) == 1
    store.close()


async def test_undo_pressed_before_the_commit_undoes_that_decision(workspace: tuple[Path, str],
                                                                   held: sqlite3.Connection) -> None:
    ws, run_id = workspace
    store = RunStore(ws / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(ws), run_id=run_id, reviewer="ada", with_memory=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        first = app.session.current
        assert first is not None
        await pilot.press("a", "m", "u")  # the undo is queued behind both decisions: it withdraws the second
        held.rollback()
        await wait_saved(app, pilot)
        assert committed(ws, run_id) == [(first.sample_id, "aligned")]
        current = app.session.current
        assert current is not None and current.status == "pending" and current.sample_id != first.sample_id
        assert any(n.startswith("undid misaligned") for n in app.notices)
        await pilot.press("q")
    store.close()
