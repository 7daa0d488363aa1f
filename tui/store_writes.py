"""The review session's writes to the run store, applied by one thread in the order the keys were pressed.

Another process (a judge run, `overseer improve`) can hold SQLite's write lock for seconds; a key handler that
wrote itself would freeze the app for up to the store's busy timeout. Here the key only queues the write and the
app moves on; this thread commits it on its own connection, retries while the store is locked, and reports each
commit back, so "saved" is said only once it is true."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from overseer.errors import StoreLockedError
from overseer.store.runs import RunStore

# Short lock waits, retried: the writer can say "the store is locked" within a second instead of after 30 s.
LOCK_WAIT_S = 0.5

Op = Callable[[RunStore], Any]
Done = Callable[[Any], None]  # receives the op's result, or the exception it raised


class StoreWriter:
    """A single writer thread with its own connection. `submit` never blocks; `drain` waits for the queue."""

    def __init__(self, path: Path, *, on_locked: Callable[[int], None] | None = None) -> None:
        self.path, self.on_locked = path, on_locked
        self._ops: deque[tuple[Op, Done | None]] = deque()
        self._cond = threading.Condition()
        self._busy = False  # an op is being applied (it has left the deque)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="overseer-store-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Writes not committed yet (queued, or being applied)."""
        with self._cond:
            return len(self._ops) + self._busy

    def submit(self, op: Op, done: Done | None = None) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            self._ops.append((op, done))
            self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted write is committed (and its `done` ran). False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._ops or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        self.drain()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        store: RunStore | Exception
        try:
            store = RunStore(self.path)
            store.db.set_busy_timeout(LOCK_WAIT_S)
        except Exception as exc:  # every write fails with it, each one reported, none waited on forever
            store = exc
        try:
            while True:
                with self._cond:
                    while not self._ops and not self._closed:
                        self._cond.wait()
                    if not self._ops:
                        return
                    op, done = self._ops.popleft()
                    self._busy = True
                result = self._apply(store, op)
                try:
                    if done is not None:
                        done(result)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            if isinstance(store, RunStore):
                store.close()

    def _apply(self, store: RunStore | Exception, op: Op) -> Any:
        if isinstance(store, Exception):
            return store
        told = False
        while True:
            try:
                return op(store)
            except StoreLockedError:
                if not told and self.on_locked is not None:
                    self.on_locked(self.pending)  # once per wait: the op stays first in line and is retried
                told = True
            except Exception as exc:  # reported to the caller's `done`, which tells the reviewer
                return exc
