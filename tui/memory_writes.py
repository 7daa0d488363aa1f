"""The review session's writes to the edge-case memory, queued in decision order and applied by whoever calls
`flush()`. The app calls it from a thread worker: the memory has one writer at a time (a file lock a seed can hold
for minutes), and no key handler may wait on it. The decision itself is already committed to the run store; the
edge case is derived from it, so a write that finds the lock taken stays queued and lands when the lock frees."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError
from overseer.types import EdgeCase


@dataclass(frozen=True)
class FlushProblem:
    message: str
    retry: bool  # True: the lock was taken, the writes are still queued; False: they were dropped


class MemoryWrites:
    def __init__(self, root: Path, *, lock_timeout: float = 30.0) -> None:
        self.root, self.lock_timeout = root, lock_timeout
        self._ops: deque[tuple[str, Any]] = deque()  # ("put", EdgeCase) | ("rm", case id)
        self._queue_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time, so the ops land in the order they were made
        self._embedder: Any = None

    def put(self, case: EdgeCase) -> None:
        with self._queue_lock:
            self._ops.append(("put", case))

    def remove(self, case_id: str) -> None:
        with self._queue_lock:
            self._ops.append(("rm", case_id))

    @property
    def pending(self) -> int:
        with self._queue_lock:
            return len(self._ops)

    def flush(self, lock_timeout: float | None = None) -> FlushProblem | None:
        """Apply every queued op under one writer lock. None when all landed (or nothing was queued)."""
        from overseer.memory.store import EdgeCaseStore, MemoryLockedError

        with self._flush_lock:
            with self._queue_lock:
                batch = list(self._ops)
            if not batch:
                return None
            timeout = self.lock_timeout if lock_timeout is None else lock_timeout
            try:
                with EdgeCaseStore(self.root, writable=True, lock_timeout=timeout, embedder=self._embedder) as writer:
                    self._embedder = writer.embedder
                    for kind, ops in groupby(batch, key=lambda op: op[0]):
                        values = [value for _, value in ops]
                        writer.add(values) if kind == "put" else writer.remove(values)
                problem = None
            except MemoryLockedError as exc:
                return FlushProblem(str(exc), retry=True)
            except OverseerError as exc:  # e.g. a damaged memory: retrying would fail the same way
                problem = FlushProblem(str(exc), retry=False)
            with self._queue_lock:
                for _ in batch:
                    self._ops.popleft()
            return problem
