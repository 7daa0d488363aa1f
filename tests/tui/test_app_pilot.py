"""The review app driven by keys (Textual's pilot): decisions, undo, resume, blind mode, screens, and an
improvement round triggered by reviews."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tui_helpers import cli, judge, screen_text, settings

from overseer.memory.store import EdgeCaseStore
from overseer.store.runs import RunStore
from overseer.tui.app import ItemScreen, QueueScreen, ReviewApp
from overseer.tui.screens import StatsScreen, VersionsScreen
from overseer.tui.state import ReviewSession


async def test_label_three_undo_one_quit_then_reopen_resumes(tmp_path: Path) -> None:
    workspace, run_id = await asyncio.to_thread(judge, tmp_path, n=20)
    store = RunStore(workspace / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(workspace), run_id=run_id, reviewer="ada"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)  # issue 14: the app opens on the queue, cursor on the next pending
        await pilot.press("enter")
        assert isinstance(app.screen, ItemScreen)
        first = app.session.current
        assert first is not None
        for key in ("a", "m", "r"):
            await pilot.press(key)
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("q")
    reviews = store.reviews(run_id)
    assert [r.label for r in reviews] == ["aligned", "misaligned"] and reviews[0].sample_id == first.sample_id
    assert all(r.reviewer == "ada" and not r.blind for r in reviews)
    cases = [c for c in EdgeCaseStore(workspace / "memory").cases().values() if c.source == "review"]
    assert len(cases) == 2 and all(c.reviewed for c in cases)
    third = store.review_items(run_id)[0]  # the undone item is pending again, first in queue order
    store.close()

    store = RunStore(workspace / "runs.sqlite")
    again = ReviewApp(ReviewSession(store, settings(workspace), run_id=run_id))
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert again.session.current is not None and again.session.current.sample_id == third.sample_id
        await pilot.press("enter")
        assert third.sample_id in screen_text(again)
    code, text = cli("reviews", "list", "--json", "-w", str(workspace))
    assert code == 0 and len(text.splitlines()) == 2 and '"blind": false' in text
    store.close()


async def test_blind_mode_hides_verdicts_until_labelled(tmp_path: Path) -> None:
    workspace, run_id = await asyncio.to_thread(judge, tmp_path, n=12)
    store = RunStore(workspace / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(workspace), run_id=run_id, blind=True, with_memory=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        assert "hidden until you label" in screen_text(app)
        await pilot.press("a", "k")  # label, then go back to it: now revealed
        await pilot.pause()
        assert "Judges:" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, StatsScreen)
        await pilot.press("escape", "v")
        await pilot.pause()
        assert isinstance(app.screen, VersionsScreen)
    assert store.reviews(run_id)[0].blind
    store.close()


async def test_reviews_trigger_an_improvement_round_and_the_app_reports_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # 400 samples: the gate spends alpha over its looks (an exact sign test), so the validation split must hold
    # enough fixed traps for one real gain to be significant at the first look.
    workspace, run_id = await asyncio.to_thread(judge, tmp_path, n=400, backend="scripted:rules", trap_every=4)
    store = RunStore(workspace / "runs.sqlite")
    conf = settings(workspace, backend="scripted:rules", reflection_backend="scripted:reflect=fix_finance",
                    learn_every=3)
    app = ReviewApp(ReviewSession(store, conf, run_id=run_id, with_memory=False))

    def no_model_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the review app built a model provider in its own process")

    # Issue 13.8: the app never calls a model; the round runs in a background `overseer improve` process.
    monkeypatch.setattr("overseer.providers.make_provider", no_model_here)
    monkeypatch.setattr("overseer.optimize.learner.make_provider", no_model_here)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        for _ in range(3):
            await pilot.press("m")  # the trap items are misaligned: the rules judge got them wrong
        for _ in range(1200):  # the round runs in an `overseer improve` process (issue 13.8): up to 2 min
            if app.improvements:
                break
            await pilot.pause(0.1)
        await pilot.pause()
    assert len(app.improvements) == 1 and "accepted" in app.improvements[0], app.improvements
    assert store.count_rounds() == 1
    [request] = store.improvement_requests()  # the due round was recorded, then run and its outcome kept
    assert request.status == "done" and request.reviews == 3 and request.outcome == app.improvements[0]
    store.close()
