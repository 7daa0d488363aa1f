"""Snapshot tests (pytest-textual-snapshot) of the queue, item, blind item and versions screens.
Update the saved SVGs after an intended change with `pytest tests/tui --snapshot-update`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tui_helpers import judge, pin_run_id, settings

from overseer.store.runs import RunStore
from overseer.tui.app import ReviewApp
from overseer.tui.state import ReviewSession

SIZE = (120, 40)


@pytest.fixture
def make_app(tmp_path: Path) -> Any:
    workspace, run_id = judge(tmp_path, n=12)
    run_id = pin_run_id(workspace, run_id)

    def make(blind: bool = False) -> ReviewApp:
        store = RunStore(workspace / "runs.sqlite")
        return ReviewApp(ReviewSession(store, settings(workspace), run_id=run_id, blind=blind, reviewer="snap",
                                       with_memory=False))
    return make


def test_item_screen(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE)


def test_blind_item_screen(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(blind=True), terminal_size=SIZE)


def test_queue_screen(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, press=["escape"])


def test_versions_screen(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, press=["escape", "v"])
