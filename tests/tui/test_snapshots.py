"""The six screens (queue, item, blind item, stats, versions, help) at 80×24 and 140×45: what must be visible,
checked on the screen's text (whole words in the key bar, full label names, no horizontal overflow), and
snapshot SVGs (pytest-textual-snapshot) for a reviewer of a change to look at. Update the saved SVGs after an
intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widget import Widget
from tui_helpers import judge, pin_run_id, screen_text, settings

from overseer.store.runs import RunStore
from overseer.tui.app import APP_BINDINGS, ITEM_BINDINGS, QUEUE_BINDINGS, ReviewApp
from overseer.tui.keys import GAP, binding_text
from overseer.tui.screens import STATS_BINDINGS, VERSIONS_BINDINGS
from overseer.tui.state import ReviewSession

SIZES = [(80, 24), (140, 45)]
KEY_ITEMS = {binding_text(b) for b in (*APP_BINDINGS, *ITEM_BINDINGS, *QUEUE_BINDINGS, *STATS_BINDINGS,
                                       *VERSIONS_BINDINGS)}
# screen: (keys pressed from the start, blind, text that must be on screen)
SCREENS: dict[str, tuple[list[str], bool, list[str]]] = {
    "queue": ([], False, ["pending", "done today", "agreement so far", "status", "preview", "s001",
                          "vs reference", "answer number 1, in words"]),
    "item": (["enter"], False, ["[1/", "Reference label: ", "Queued because: the judges disagree with the "
                                "reference label", "question 1", "answer number 1, in words", "Judges:"]),
    "blind_item": (["enter"], True, ["BLIND", "Reference label: hidden until you label", "answer number 1",
                                     "the judges' verdicts are hidden until you label this item"]),
    "stats": (["t"], False, ["Judge vs human: 0 reviews", "Confusion (rows = human, columns = judge)",
                             "aligned", "misaligned", "refusal", "incoherent", "off-task", "unscored"]),
    "versions": (["v"], False, ["version", "κ (validation)", "v1", "active"]),
    "help": (["question_mark"], False, ["Keys — esc, ? or q closes", "Queue screen", "enter", "Open",
                                        "Everywhere", "Stats", "Versions"]),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    ws, run_id = judge(tmp_path_factory.mktemp("snap"), n=12)
    return ws, pin_run_id(ws, run_id)


def make_app(workspace: tuple[Path, str], blind: bool = False) -> ReviewApp:
    store = RunStore(workspace[0] / "runs.sqlite")
    return ReviewApp(ReviewSession(store, settings(workspace[0]), run_id=workspace[1], blind=blind,
                                   reviewer="snap", with_memory=False))


def overflowing(screen: Widget) -> list[str]:
    return [repr(w) for w in screen.query("*") if getattr(w, "show_horizontal_scrollbar", False)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", SCREENS)
async def test_screen_shows_what_a_reviewer_needs(workspace: tuple[Path, str], name: str,
                                                  size: tuple[int, int]) -> None:
    keys, blind, must = SCREENS[name]
    app = make_app(workspace, blind)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press(*keys)
        await app.workers.wait_for_complete()
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert len(lines) == size[1] and all(len(line) <= size[0] for line in lines)
        text = "\n".join(lines)
        for needed in must:
            assert needed in text, (name, size, needed, text)
        assert not overflowing(app.screen), overflowing(app.screen)
        if name != "help":  # the help modal covers the bar; it lists every key itself
            bar = [item.strip() for item in lines[-1].strip().split(GAP) if item.strip()]
            assert "q Quit" in bar and "? Help" in bar, bar
            assert set(bar) <= KEY_ITEMS, set(bar) - KEY_ITEMS  # whole "key description" items, never cut
        await pilot.press("escape" if name == "help" else "q")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", SCREENS)
def test_snapshot(snap_compare: Any, workspace: tuple[Path, str], name: str, size: tuple[int, int]) -> None:
    keys, blind, _ = SCREENS[name]
    async def settled(pilot: Any) -> None:  # runs before `press`: the keys, then the workers (the stats'
        await pilot.press(*keys)            # EM rates come from a worker thread)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(workspace, blind), terminal_size=size, run_before=settled)


@pytest.mark.parametrize("theme", ["textual-light", "no-color"])
async def test_item_screen_reads_on_a_light_theme_and_without_colour(workspace: tuple[Path, str], theme: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14.7: nothing on the item screen depends on colour alone (evidence and keys are bold reverse)."""
    from overseer.tui.item_view import highlight

    if theme == "no-color":
        monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        if theme != "no-color":
            app.theme = theme
        else:
            assert app.no_color
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        for needed in SCREENS["item"][2]:
            assert needed in text, (theme, needed)
        assert not overflowing(app.screen)
        await pilot.press("q")
    marked = highlight("he said: wire the money now", ["wire the money"])
    assert [(span.start, span.end, str(span.style)) for span in marked.spans] == [(9, 23, "bold reverse")]


def test_item_snapshot_on_a_light_theme(snap_compare: Any, workspace: tuple[Path, str]) -> None:
    async def light(pilot: Any) -> None:
        pilot.app.theme = "textual-light"
        await pilot.pause()

    assert snap_compare(make_app(workspace), terminal_size=(80, 24), press=["enter"], run_before=light)
