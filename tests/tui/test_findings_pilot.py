"""Issue 14, one pilot test per finding: the app opens on the queue; the footer shows q and ? (whole words) at
80 columns; the item shows the reference label and why it is queued; skip keeps a typed draft (also across a
reopen); e is explained on first use and in help; keys that cannot act say why (R with only v1, A on the active
version, u with nothing to undo); help lists overseer's keys first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import judge, screen_text, settings

from overseer.store.runs import RunStore
from overseer.tui.app import ItemScreen, QueueScreen, ReviewApp
from overseer.tui.screens import HelpScreen, TextModal, VersionsScreen
from overseer.tui.state import ReviewSession


@pytest.fixture
def queue_ws(tmp_path: Path) -> tuple[Path, str]:
    return judge(tmp_path, n=12)


def app_for(ws: tuple[Path, str], **kwargs: Any) -> ReviewApp:
    store = RunStore(ws[0] / "runs.sqlite")
    return ReviewApp(ReviewSession(store, settings(ws[0]), run_id=ws[1], reviewer="ada", with_memory=False,
                                   **kwargs))


async def settle(app: ReviewApp, pilot: Any) -> None:
    while app.session.writer is not None and app.session.writer.pending:
        await pilot.pause(0.05)
    await pilot.pause()


async def test_opens_on_the_queue_with_q_and_help_in_the_footer_at_80_columns(queue_ws: tuple[Path, str]) -> None:
    app = app_for(queue_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        text = screen_text(app)
        assert text.splitlines()[0].lstrip().startswith("pending ")  # counts: pending, done today, agreement
        assert "done today" in text and "agreement so far" in text
        for screen in ("queue", "item"):
            bar = screen_text(app).splitlines()[-1]
            assert "q Quit" in bar and "? Help" in bar, (screen, bar)
            await pilot.press("enter")
        assert isinstance(app.screen, ItemScreen)
        assert "a aligned" in bar and "o off-task" in bar  # the label keys come right after q and ?
        await pilot.press("q")


async def test_the_item_shows_the_reference_label_and_why_it_is_queued(queue_ws: tuple[Path, str]) -> None:
    app = app_for(queue_ws)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("enter")
        row = app.session.current
        assert row is not None and "judge_vs_reference" in row.reasons
        sample = app.session.store.sample(row.run_id, row.sample_id)
        assert sample is not None and sample.reference_label
        text = screen_text(app)
        assert f"Reference label: {sample.reference_label}" in text
        assert "Queued because: the judges disagree with the reference label in the input" in text
        assert "Judges:" in text and "rationale" in text  # the judges' verdicts, side by side
        await pilot.press("q")


async def test_skip_keeps_the_note_and_generalization_typed_before_it(queue_ws: tuple[Path, str]) -> None:
    app = app_for(queue_ws)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        first = app.session.current
        assert first is not None
        await pilot.press("n")
        assert isinstance(app.screen, TextModal)
        await pilot.press(*"keep me", "enter")
        await pilot.press("g", "s")
        await settle(app, pilot)
        assert any("draft" in n and "kept" in n for n in app.notices)
        assert app.session.current is not None and app.session.current.sample_id != first.sample_id
        await pilot.press("k")  # back to the skipped item: the draft is on it
        assert "note='keep me'" in screen_text(app) and "generalization=in_domain" in screen_text(app)
        await pilot.press("q")
    store = RunStore(queue_ws[0] / "runs.sqlite")  # a new session: the draft was stored with the item
    again = ReviewSession(store, settings(queue_ws[0]), run_id=queue_ws[1], with_memory=False)
    again.goto(first.index)
    assert again.draft_note == "keep me" and again.draft_generalization == "in_domain"
    decision = again.decide("aligned")  # the draft becomes the decision's, then it is spent
    assert decision is not None and decision.review.note == "keep me"
    assert store.draft(first.run_id, first.sample_id) is None
    store.close()


async def test_promote_is_explained_on_first_use_and_in_help(queue_ws: tuple[Path, str]) -> None:
    app = app_for(queue_ws)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter", "e")
        assert any("promote:" in n and "memory" in n for n in app.notices)
        assert "promote" in screen_text(app).split("Draft:")[1].splitlines()[0]
        await pilot.press("e")
        assert app.notices[-1] == "promote: off"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        help_text = screen_text(app)
        assert "Item screen" in help_text.split("Everywhere")[0]  # this screen's keys come first
        for key in ("aligned", "Generalization", "Promote", "Skip", "Undo", "Stats", "Versions", "Quit"):
            assert key in help_text, key
        await pilot.press("escape", "q")


async def test_keys_that_cannot_act_say_why(queue_ws: tuple[Path, str]) -> None:
    app = app_for(queue_ws)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter", "u")
        await settle(app, pilot)
        assert any(n.startswith("nothing to undo") for n in app.notices)
        await pilot.press("k")
        assert app.notices[-1] == "first item of the queue"
        await pilot.press("v")
        assert isinstance(app.screen, VersionsScreen)
        await pilot.press("R")
        assert app.notices[-1] == "only v1 has been active: nothing to roll back to"
        await pilot.press("A")
        assert app.notices[-1] == "v1 is already the active judge prompt"
        await pilot.press("d")
        assert "no parent" in app.notices[-1]
        await pilot.press("escape", "q")


async def test_quitting_from_any_screen_loses_no_decision(queue_ws: tuple[Path, str]) -> None:
    app = app_for(queue_ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter", "a", "m", "t", "q")
        await asyncio.sleep(0)
    store = RunStore(queue_ws[0] / "runs.sqlite")
    assert [r.label for r in store.reviews(queue_ws[1])] == ["aligned", "misaligned"]
    store.close()
