"""The review session's queue of memory writes (tui/memory_writes.py): order kept, a locked memory keeps the
writes queued for the next flush, a damaged one drops them with the reason."""

from __future__ import annotations

import fcntl
from pathlib import Path

from overseer.memory.store import EdgeCaseStore
from overseer.tui.memory_writes import MemoryWrites
from overseer.types import EdgeCase


def case(label: str = "aligned") -> EdgeCase:
    return EdgeCase(id="ec-review-1", prompt="q", response="a reviewed answer", label=label,  # type: ignore[arg-type]
                    source="review", reviewed=True)


def test_writes_land_in_the_order_they_were_made(tmp_path: Path) -> None:
    writes = MemoryWrites(tmp_path / "memory")
    writes.put(case("aligned"))
    writes.remove("ec-review-1")
    writes.put(case("misaligned"))  # decide, undo, decide again: the last decision wins
    assert writes.pending == 3 and writes.flush() is None and writes.pending == 0
    found = EdgeCaseStore(tmp_path / "memory").get("ec-review-1")
    assert found is not None and found.label == "misaligned"
    writes.remove("ec-review-1")
    assert writes.flush() is None and EdgeCaseStore(tmp_path / "memory").get("ec-review-1") is None


def test_a_locked_memory_keeps_the_writes_for_the_next_flush(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    root.mkdir()
    writes = MemoryWrites(root)
    writes.put(case())
    with (root / "writer.lock").open("a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # its own open file: conflicts with the writer's flock
        problem = writes.flush(lock_timeout=0.2)
        assert problem is not None and problem.retry and "being written by another overseer process" in problem.message
        assert writes.pending == 1
        fcntl.flock(holder, fcntl.LOCK_UN)
    assert writes.flush() is None and writes.pending == 0
    assert EdgeCaseStore(root).get("ec-review-1") is not None


def test_a_damaged_memory_drops_the_writes_and_says_why(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    root.mkdir()
    (root / "meta.json").write_text("{torn")
    writes = MemoryWrites(root)
    writes.put(case())
    problem = writes.flush()
    assert problem is not None and not problem.retry and "meta.json is unreadable" in problem.message
    assert writes.pending == 0
