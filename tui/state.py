"""The review session, without Textual: queue paging, filters, cursor, decisions, undo, stats and the
improvement trigger. The app only displays this object and forwards keys to it, so every behaviour here is
testable without a terminal.

A decision is one SQLite transaction; the edge case written to the memory afterwards is derived data (`undo`
removes it again). In the app every store write goes through one writer thread (tui/store_writes.py), so a key
never waits on another process's lock: the session moves on at once and learns of the commit by a callback.
The session never calls a model: a due improvement round is recorded for `overseer improve` to run."""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from overseer.config import Settings
from overseer.errors import OverseerError
from overseer.run_config import spec_path
from overseer.spec import load_spec
from overseer.store.review_app import Draft
from overseer.store.runs import ReviewRecord, RunStore
from overseer.tui import improvements
from overseer.tui import queue as q
from overseer.tui.memory_writes import MemoryWrites, review_case
from overseer.tui.queue import QueueFilter, QueueRow
from overseer.types import EdgeCase, Generalization, Label, Sample, SampleResult, Spec, SpecClause

if TYPE_CHECKING:
    from overseer.tui.store_writes import StoreWriter

GENERALIZATIONS: tuple[Generalization | None, ...] = (None, "in_domain", "domain_leakage", "emergent", "n/a")
# Why an item is in the queue, in words a reviewer reads.
REASON_TEXT: dict[str, str] = {
    "judge_split": "the judges disagree with each other",
    "judge_vs_memory": "the judges disagree with similar reviewed cases in the memory",
    "low_confidence": "the judges are not confident",
    "near_threshold": "the alignment score is near the misalignment threshold",
    "judge_vs_reference": "the judges disagree with the reference label in the input",
    "unscored": "no judge gave a usable verdict",
    "manipulation_attempt": "the response seems to address the judge (a manipulation attempt)",
}
# Reasons that give a label away (the judges split, or differ from the reference): hidden in blind review.
LABEL_REVEALING_REASONS = frozenset({"judge_vs_reference", "judge_split"})


@dataclass
class ItemDetail:
    row: QueueRow
    sample: Sample
    result: SampleResult
    clauses: dict[str, SpecClause | None]  # every clause a judge cited, None when the spec lacks it
    similar: list[tuple[EdgeCase, float]] = field(default_factory=list)
    review: ReviewRecord | None = None  # the active human decision, if any


@dataclass
class PendingDecision:
    """A decision keyed but not yet committed: everything the writing thread needs, read on the UI thread."""

    row: QueueRow
    sample: Sample
    label: Label
    note: str | None
    generalization: Generalization | None
    promote: bool
    edge_case_id: str | None


@dataclass
class Decision:
    review: ReviewRecord
    edge_case_id: str | None
    memory_error: str | None = None
    improvement_due: bool = False


class ReviewSession:
    def __init__(self, store: RunStore, settings: Settings, *, run_id: str | None = None, reason: str | None = None,
                 label: str | None = None, clause: str | None = None, search: str | None = None,
                 sort: str = "queue", blind: bool = False, reviewer: str | None = None, page_size: int = 200,
                 with_memory: bool = True) -> None:
        self.store, self.settings, self.blind, self.page_size = store, settings, blind, page_size
        self.reviewer = reviewer or os.environ.get("OVERSEER_REVIEWER") or _user()
        self.with_memory = with_memory
        # Edge cases go to the memory through this queue; the app sets background_memory and flushes it from a
        # thread worker, so no key waits on the memory's writer lock (tui/memory_writes.py).
        self.memory_writes = MemoryWrites(settings.workspace / "memory")
        self.background_memory = False
        if run_id:
            store.get_run(run_id)  # a clear error for an unknown run
        self.filter = QueueFilter(run_id=run_id, reason=reason, label=label, clause=clause, search=search, sort=sort)
        self.filter.order()  # validates the sort name before any query
        self.history: list[int] = []  # review ids decided in this session, for undo (the writing thread's)
        self._drafts: dict[tuple[str, str], Draft] = {}
        # Items whose decision or skip is queued but not committed (value: it was pending), so the cursor and
        # the counts treat them as handled already.
        self._in_flight: dict[tuple[str, str], bool] = {}
        self.last_saved: str | None = None  # the last committed decision, for the header
        self.writer: StoreWriter | None = None  # the app's writer thread; None = write synchronously
        self.call_in_ui: Callable[..., Any] = lambda fn, *args: fn(*args)
        self._run_stats: dict[str | None, dict[str, Any]] = {}  # judged results do not change during a review
        self._stats_lock = threading.Lock()
        self._specs: dict[str, Spec] = {}
        self._embedder: Any = None
        self._last_trigger = store.count_reviews()
        self._reload()

    # --- the queue ------------------------------------------------------------------------------------------
    def _reload(self) -> None:
        self._pages: dict[int, list[QueueRow]] = {}
        self.total = q.count(self.store, self.filter)
        first = q.next_index(self.store, self.filter, -1)
        self.cursor = first if first is not None else 0  # reopening resumes at the next pending item

    def set_filter(self, **changes: Any) -> None:
        self.filter = replace(self.filter, **changes)
        self.filter.order()
        self._reload()

    def row(self, index: int) -> QueueRow | None:
        if not 0 <= index < self.total:
            return None
        number = index // self.page_size
        if number not in self._pages:
            self._pages[number] = q.page(self.store, self.filter, number * self.page_size, self.page_size)
        rows = self._pages[number]
        offset = index - number * self.page_size
        return rows[offset] if offset < len(rows) else None

    def rows(self, start: int, count: int) -> list[QueueRow]:
        return [r for i in range(start, min(start + count, self.total)) if (r := self.row(i)) is not None]

    @property
    def current(self) -> QueueRow | None:
        return self.row(self.cursor)

    def move(self, delta: int) -> None:
        self.goto(self.cursor + delta)

    def goto(self, index: int) -> None:
        self.cursor = max(0, min(index, self.total - 1)) if self.total else 0

    def _refresh_row(self, index: int) -> None:
        self._pages.pop(index // self.page_size, None)  # re-read the item's page: its status changed

    def _advance(self) -> None:
        following = self._next_pending(self.cursor)
        if following is None:
            following = self._next_pending(-1)  # wrap: earlier items skipped or undone
        self.goto(following if following is not None else self.cursor)

    def _next_pending(self, after: int) -> int | None:
        """The next pending item after position `after`, passing over those whose write is still queued."""
        while (index := q.next_index(self.store, self.filter, after)) is not None:
            row = self.row(index)
            if row is None or (row.run_id, row.sample_id) not in self._in_flight:
                return index
            after = index
        return None

    def counts(self) -> dict[str, Any]:
        """For the header: pending, done today (by anyone, in this queue's scope), agreement so far."""
        statuses = q.status_counts(self.store, replace(self.filter, status=None))
        today = datetime.now(UTC).date().isoformat()
        # Counted by SQLite: the header is redrawn after every key, on queues of 10,000 items.
        labels = self.store.review_label_counts(self.filter.run_id, None)
        decided = sum(n for *_, n in labels)
        agreed = sum(n for _, label, judge, n in labels if label == judge)
        handled = sum(self._in_flight.values())  # keyed, not committed yet: no longer pending to the reviewer
        return {"pending": statuses.get("pending", 0) - handled, "saving": self.saving,
                "skipped": statuses.get("skipped", 0), "done": statuses.get("done", 0),
                "done_today": self.store.count_reviews_since(self.filter.run_id, today),
                "agreement": agreed / decided if decided else None, "total": self.total}

    # --- one item -------------------------------------------------------------------------------------------
    def spec_for(self, run_id: str) -> Spec:
        if run_id not in self._specs:
            self._specs[run_id] = load_spec(spec_path(self.store.get_run(run_id).config))
        return self._specs[run_id]

    def detail(self, row: QueueRow | None = None, *, similar: int = 4) -> ItemDetail | None:
        row = row or self.current
        if row is None:
            return None
        result = self.store.result(row.run_id, row.sample_id)
        sample = self.store.sample(row.run_id, row.sample_id)
        if result is None or sample is None:
            raise OverseerError(f"{row.run_id}/{row.sample_id} is queued but its result is missing")
        spec = self.spec_for(row.run_id)
        cited = dict.fromkeys(c for v in result.verdicts for c in v.clause_ids)
        review = self.store.active_review(row.run_id, row.sample_id)
        return ItemDetail(row, sample, result, {c: spec.clause(c) for c in cited},
                          self.similar_cases(sample, similar) if similar else [], review)

    def revealed(self, detail: ItemDetail | None) -> bool:
        """Blind mode hides the judges' verdicts until the human has labelled the item."""
        return not self.blind or (detail is not None and detail.review is not None)

    def similar_cases(self, sample: Sample, k: int) -> list[tuple[EdgeCase, float]]:
        from overseer.memory import store as memory

        root = self.settings.workspace / "memory"
        if not self.with_memory or not (root / "meta.json").exists():
            return []
        try:
            reader = memory.EdgeCaseStore(root, embedder=self._embedder)
            self._embedder = reader.embedder
            return reader.similar(f"{sample.context_text()}\n\n{sample.response}", k)
        except OverseerError:
            return []

    # --- drafts: typed on one item, kept on it (across moves, skips and quits) until it is decided ---------------
    def draft(self, row: QueueRow | None = None) -> Draft:
        row = row or self.current
        if row is None:
            return Draft()
        key = (row.run_id, row.sample_id)
        if key not in self._drafts:
            self._drafts[key] = self.store.draft(*key) or Draft()
        return self._drafts[key]

    @property
    def draft_note(self) -> str | None:
        return self.draft().note

    @property
    def draft_generalization(self) -> Generalization | None:
        return self.draft().generalization  # type: ignore[return-value]

    @property
    def draft_promote(self) -> bool:
        return self.draft().promote

    def cycle_generalization(self) -> Generalization | None:
        draft = self.draft()
        at = GENERALIZATIONS.index(draft.generalization)  # type: ignore[arg-type]
        draft.generalization = GENERALIZATIONS[(at + 1) % len(GENERALIZATIONS)]
        self._keep_draft()
        return draft.generalization  # type: ignore[return-value]

    def set_note(self, note: str | None) -> None:
        self.draft().note = note.strip() if note and note.strip() else None
        self._keep_draft()

    def toggle_promote(self) -> bool:
        draft = self.draft()
        draft.promote = not draft.promote
        self._keep_draft()
        return draft.promote

    def _keep_draft(self) -> None:
        row = self.current
        if row is not None:
            kept = replace(self.draft(row))  # a copy: the writer thread must not see later edits half-made
            self.write(lambda store: store.save_draft(row.run_id, row.sample_id, kept))

    # --- writes: through the app's writer thread when there is one, else here and now --------------------------
    def write(self, op: Callable[[RunStore], Any], done: Callable[[Any], None] | None = None) -> None:
        """Apply one store write. With a writer (the app sets `writer` and `call_in_ui`), queue it and return at
        once; `done` later gets the result (or the exception) on the UI thread. Without one, write now and
        re-raise a failure after `done` has seen it."""
        if self.writer is not None:
            self.writer.submit(op, None if done is None else lambda result: self._deliver(done, result))
            return
        try:
            result = op(self.store)
        except Exception as exc:
            if done is not None:
                done(exc)
            raise
        if done is not None:
            done(result)

    def _deliver(self, done: Callable[[Any], None], result: Any) -> None:
        """On the writer thread: hand the result to the UI thread. When the app has already gone (it exited
        without `q`), the write is committed all the same; only the report is dropped."""
        with contextlib.suppress(RuntimeError):
            self.call_in_ui(done, result)

    def close(self) -> None:
        """Commit every queued write and stop the writer (the CLI calls this after the app, however it ended)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # --- decisions ------------------------------------------------------------------------------------------
    def decide(self, label: Label, note: str | None = None, generalization: Generalization | None = None,
               promote: bool = False, done: Callable[[Decision | Exception], None] | None = None) -> Decision | None:
        """Decide the current item and move on at once. The decision is committed by `write` (in order, on
        the writer thread in the app); `done` gets it once committed. Returns it when written synchronously."""
        row = self.current
        if row is None:
            raise OverseerError("the queue is empty")
        from overseer.memory.store import case_id

        sample = self.detail_sample(row.run_id, row.sample_id)
        draft = self.draft(row)
        pending = PendingDecision(
            row=row, sample=sample, label=label, note=note if note is not None else draft.note,
            generalization=generalization or draft.generalization,  # type: ignore[arg-type]
            promote=promote or draft.promote,
            edge_case_id=case_id(sample.context_text() or None, sample.response,
                                 record_id=f"review:{row.run_id}:{row.sample_id}") if self.with_memory else None)
        key = (row.run_id, row.sample_id)
        self._in_flight[key] = row.status == "pending"
        self._advance()
        box: list[Decision] = []

        def committed(result: Decision | Exception) -> None:
            self._in_flight.pop(key, None)
            self._refresh_row(row.index)
            if isinstance(result, Decision):
                self._drafts.pop(key, None)
                result.improvement_due = self._improvement_due()
                self.last_saved = f"{row.sample_id} = {label}"
                box.append(result)
            if done is not None:
                done(result)

        self.write(lambda store: self._commit(pending, store), committed)
        return box[0] if box else None

    def _commit(self, pending: PendingDecision, store: RunStore) -> Decision:
        """The decision's one transaction, on whichever thread writes; then its edge case is queued."""
        row = pending.row
        review = store.record_review(run_id=row.run_id, sample_id=row.sample_id, label=pending.label,
                                     reviewer=self.reviewer, blind=self.blind, generalization=pending.generalization,
                                     note=pending.note, judge_label=row.judge_label, promoted=pending.promote,
                                     edge_case_id=pending.edge_case_id)
        store.save_draft(row.run_id, row.sample_id, Draft())  # decided: the draft is spent
        self.history.append(review.id)  # only the writing thread touches history
        memory_error = self._remember(review, pending.sample) if self.with_memory else None
        return Decision(review, review.edge_case_id, memory_error)

    def skip(self, done: Callable[[Any], None] | None = None) -> QueueRow | None:
        """Leave the current item for later; a draft typed on it stays with it."""
        row = self.current
        if row is None:
            return None
        key = (row.run_id, row.sample_id)
        self._in_flight[key] = row.status == "pending"
        self._advance()

        def committed(result: Any) -> None:
            self._in_flight.pop(key, None)
            self._refresh_row(row.index)
            if done is not None:
                done(result)

        self.write(lambda store: store.set_review_status(row.run_id, row.sample_id, "skipped"), committed)
        return row

    def undo(self, done: Callable[[ReviewRecord | None | Exception], None] | None = None) -> ReviewRecord | None:
        """Withdraw the last decision of this session (or, after a reopen, this reviewer's last one): the item
        goes back to pending, its edge case leaves the memory, and the cursor returns to it. Queued behind the
        decisions keyed before it, so it undoes the last of them even before that one is committed."""
        box: list[ReviewRecord] = []

        def finished(result: ReviewRecord | None | Exception) -> None:
            if isinstance(result, ReviewRecord):
                self._pages.clear()
                index = q.index_of(self.store, self.filter, result.run_id, result.sample_id)
                self.goto(index if index is not None else self.cursor)
                box.append(result)
            if done is not None:
                done(result)

        self.write(self._undo, finished)
        return box[0] if box else None

    def _undo(self, store: RunStore) -> ReviewRecord | None:
        last = store.review(self.history.pop()) if self.history else \
            store.last_review(self.filter.run_id, self.reviewer)
        if last is None or last.status != "active":
            return None
        restored = store.undo_review(last.id)
        if self.with_memory and last.edge_case_id:
            sample = store.sample(last.run_id, last.sample_id)
            if restored is None or sample is None:
                self._forget(last.edge_case_id)
            else:
                self._remember(restored, sample)
        return last

    def status_of(self, row: QueueRow) -> str:
        """The row's status as the reviewer sees it: "saving" while its decision or skip is being written."""
        return "saving" if (row.run_id, row.sample_id) in self._in_flight else row.status

    @property
    def saving(self) -> int:
        """Decisions and skips keyed but not committed yet."""
        return len(self._in_flight)

    def detail_sample(self, run_id: str, sample_id: str) -> Sample:
        sample = self.store.sample(run_id, sample_id)
        if sample is None:
            raise OverseerError(f"{run_id}/{sample_id} was reviewed but its sample is missing")
        return sample

    # --- memory: reviewed edge cases -------------------------------------------------------------------------
    def _remember(self, review: ReviewRecord, sample: Sample) -> str | None:
        case = review_case(review, sample)
        self.memory_writes.put(case)
        return self._write_memory()

    def _forget(self, edge_case_id: str) -> None:
        self.memory_writes.remove(edge_case_id)
        self._write_memory()

    def _write_memory(self) -> str | None:
        """Write the queued edge cases now, unless the app writes them from a thread worker (background_memory).
        Either way the decision is safe in SQLite already; the message says why the memory missed it."""
        if self.background_memory:
            return None
        problem = self.memory_writes.flush()
        return problem.message if problem else None

    # --- learning -------------------------------------------------------------------------------------------
    def _improvement_due(self) -> bool:
        total = self.store.count_reviews()
        if total >= self._last_trigger + self.settings.learn_every:
            self._last_trigger = total
            return True
        return False

    def start_improvement(self, request_id: int, reviews: int) -> improvements.Round:
        """Start the recorded round `request_id` as a background `overseer improve` with this session's
        settings and the spec of the run in scope; the request is marked running."""
        run_id = self.filter.run_id or (self.current.run_id if self.current else None)
        spec = spec_path(self.store.get_run(run_id).config) if run_id else None
        round_ = improvements.start(self.settings, request_id, spec=spec, seed=reviews)
        self.write(lambda store: store.update_improvement(request_id, "running", pid=round_.pid,
                                                          log_path=str(round_.log_path)))
        return round_

    def finish_improvement(self, round_: improvements.Round, code: int) -> tuple[str, str]:
        status, message = improvements.outcome(round_, code)
        self.write(lambda store: store.update_improvement(round_.request_id, status, outcome=message))
        return status, message

    async def improve(self) -> str:
        """One round now, run as the app runs a due one (recorded, then `overseer improve` in its own process),
        waiting for its outcome line: the session itself never calls a model."""
        import asyncio

        reviews = self.store.count_reviews()
        box: list[int] = []
        self.write(lambda store: store.request_improvement(reviews), box.append)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.drain)
        round_ = self.start_improvement(box[0], reviews)
        code = await asyncio.to_thread(improvements.wait, round_, lambda: False)
        return self.finish_improvement(round_, code if code is not None else 1)[1]

    def stats(self) -> dict[str, Any]:
        return {**self.review_stats(), **self.run_stats()}

    def review_stats(self) -> dict[str, Any]:
        """Judge vs human so far: quick (the reviews in scope), computed on every open."""
        from overseer.tui.stats import review_stats

        return review_stats(self.store, self.filter.run_id)

    def run_stats(self) -> dict[str, Any]:
        """EM rates of the runs in scope: reads every result, so computed once per session and scope, on its own
        connection (any thread may call this: the app calls it from a worker)."""
        from overseer.tui.stats import run_stats

        run_id = self.filter.run_id
        with self._stats_lock:
            if run_id not in self._run_stats:
                store = RunStore(self.store.path)
                try:
                    self._run_stats[run_id] = run_stats(store, run_id)
                finally:
                    store.close()
            return self._run_stats[run_id]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
