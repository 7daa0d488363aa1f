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
from typing import TYPE_CHECKING, Any

from overseer.errors import OverseerError
from overseer.types import EdgeCase, Sample

if TYPE_CHECKING:
    from overseer.store.runs import ReviewRecord


def review_case(review: ReviewRecord, sample: Sample) -> EdgeCase:
    """The edge case a human decision makes: reviewed, with the reviewer's note as its rationale."""
    return EdgeCase(id=review.edge_case_id or "", prompt=sample.context_text() or None, response=sample.response,
                    label=review.label,  # type: ignore[arg-type]
                    generalization=review.generalization,  # type: ignore[arg-type]
                    rationale=review.note or "", source="review", source_ref=f"{review.run_id}/{review.sample_id}",
                    author=review.reviewer, reviewed=True,
                    # The sample's metadata travels with the case (the optimizer's pool reads it); ours is
                    # "_"-prefixed, which the pool strips.
                    metadata={**sample.metadata, "_promoted": review.promoted, "_blind": review.blind})


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

    def queue_missing(self, runs_path: Path) -> int:
        """Queue what committed decisions left out of the memory (the reviewer quit while a seed held the lock
        past the timeout, or a crash between the commit and the write): the edge case of every active decision
        the memory never got or holds with another label or note, and the removal of every undone one it still
        holds. Ahead of the
        queue and under the flush lock, so a decision made meanwhile still lands after it. Returns the count."""
        from overseer.memory import memory_exists
        from overseer.memory.store import EdgeCaseStore, same_content
        from overseer.store.runs import RunStore

        with self._flush_lock:
            runs = RunStore(runs_path)  # our own connection: this runs on a worker thread
            try:
                reviews = runs.reviews(include_inactive=True)
                active = {r.edge_case_id: r for r in reviews if r.status == "active" and r.edge_case_id}
                undone = {r.edge_case_id for r in reviews if r.edge_case_id and r.edge_case_id not in active}
                if not active and not undone:
                    return 0
                memory = EdgeCaseStore(self.root) if memory_exists(self.root) else None
                held = memory.get_many([*active, *undone]) if memory else {}
                # A case the log once held and no longer does was removed on purpose (`memory rm`): not re-added.
                written = memory.logged_ids() if memory else set()
                samples: dict[str, dict[str, Sample]] = {}
                ops: list[tuple[str, Any]] = []
                for case_id, review in active.items():
                    if review.run_id not in samples:
                        samples[review.run_id] = {s.id: s for s in runs.samples(review.run_id)}
                    want = review_case(review, samples[review.run_id][review.sample_id])
                    stale = case_id in held and not same_content(held[case_id], want)
                    if stale or (case_id not in held and case_id not in written):
                        ops.append(("put", want))
                ops += [("rm", case_id) for case_id in undone if case_id in held]
            finally:
                runs.close()
            with self._queue_lock:
                self._ops.extendleft(reversed(ops))
            return len(ops)

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
