"""Issue 13.8: in blind review no judge label, no reference label and no label-revealing review reason
(judge_vs_reference, judge_split) is anywhere on screen — queue table, item, similar cases — until the human has
labelled the item; then all of it is shown."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tui_helpers import cli, judge, screen_text, settings

from overseer.store.runs import RunStore
from overseer.tui.app import ItemScreen, QueueScreen, ReviewApp
from overseer.tui.item_view import shown_reasons
from overseer.tui.state import ReviewSession

LABEL_WORDS = re.compile(r"\b(aligned|misaligned|refusal|incoherent|off[-_]task|unscored)\b")
HEADER = re.compile(r"^ pending \d+ · ")
REVEALING = ("judge_vs_reference", "vs reference", "judge_split", "disagree with the reference",
             "disagree with each other")


def above_key_bar(app: ReviewApp) -> str:
    """The screen without its last line (the key bar names the label keys: a aligned, m misaligned…) and
    without the header's counts line, which names the reviewer's own last decision once saved."""
    return "\n".join(line for line in screen_text(app).splitlines()[:-1] if not HEADER.match(line))


def assert_nothing_revealed(text: str) -> None:
    assert not LABEL_WORDS.search(text), LABEL_WORDS.search(text)
    assert not any(r in text for r in REVEALING), text


async def test_blind_review_shows_no_label_until_the_human_labels(tmp_path: Path) -> None:
    workspace, run_id = await asyncio.to_thread(judge, tmp_path, n=12)
    seed = tmp_path / "seed.jsonl"  # a reviewed case like the queued ones: the similar-cases box shows it
    seed.write_text('{"id": "x", "prompt": "question 1", "response": "answer number 1, in words", '
                    '"label": "misaligned"}\n')
    assert (await asyncio.to_thread(cli, "seed", str(seed), "--reviewed", "-w", str(workspace)))[0] == 0
    store = RunStore(workspace / "runs.sqlite")
    app = ReviewApp(ReviewSession(store, settings(workspace), run_id=run_id, blind=True, reviewer="ada"))
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, QueueScreen)
        queue = above_key_bar(app)
        assert "hidden" in queue and "answer number" in queue
        assert_nothing_revealed(queue)
        await pilot.press("enter")
        assert isinstance(app.screen, ItemScreen)
        first = app.session.current
        assert first is not None and first.reasons == ["judge_vs_reference"] and first.judge_label
        item = above_key_bar(app)
        assert "Reference label: hidden until you label" in item and "Similar reviewed cases" in item
        assert "answer number" in item and "Judges:" not in item
        assert_nothing_revealed(item)
        await pilot.press("l")  # filtering by the judges' label would reveal it: refused, with the reason
        await pilot.press("a")  # the human labels the first item ...
        while app.session.saving:
            await pilot.pause(0.05)
        app.clear_notifications()  # the toast revealing the judges of the item just labelled
        await pilot.pause()
        assert_nothing_revealed(above_key_bar(app))  # ... the next item is still blind
        assert any(first.sample_id in n and "judges" in n for n in app.notices)
        await pilot.press("k")  # back to the labelled one: everything is shown now
        await pilot.pause()
        revealed = above_key_bar(app)
        sample = store.sample(run_id, first.sample_id)
        assert sample is not None and sample.reference_label
        assert f"Reference label: {sample.reference_label}" in revealed
        assert "Judges:" in revealed and first.judge_label in revealed
        assert "disagree with the reference" in revealed and "misaligned" in revealed  # the similar case's label
        await pilot.press("escape")
        await pilot.pause()
        assert first.judge_label in above_key_bar(app)  # the labelled row of the queue shows its judges too
        await pilot.press("q")
    store.close()


def test_label_revealing_reasons_are_hidden_until_revealed() -> None:
    reasons = ["judge_split", "low_confidence", "judge_vs_reference", "manipulation_attempt"]
    assert shown_reasons(reasons, revealed=False) == ["low_confidence", "manipulation_attempt"]
    assert shown_reasons(reasons, revealed=True) == reasons
