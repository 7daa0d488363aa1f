"""The run store: the only code that speaks SQL. `open_store(workspace)` gives the workspace's one store."""

from __future__ import annotations

from pathlib import Path

from overseer.store.runs import RunStore

STORE_FILE = "runs.sqlite"


def open_store(workspace: Path) -> RunStore:
    return RunStore(Path(workspace) / STORE_FILE)


__all__ = ["STORE_FILE", "RunStore", "open_store"]
