"""The review session, without Textual: queue paging, filters, cursor, decisions, undo, stats and the
improvement trigger. The app only displays this object and forwards keys to it, so every behaviour here is
testable without a terminal.

A decision is committed to SQLite (one transaction) before anything else happens; the edge case written to the
memory afterwards is derived data (`undo` removes it again)."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from overseer.config import Settings
from overseer.errors import OverseerError
from overseer.run_config import spec_path
from overseer.spec import load_spec
from overseer.store.runs import ReviewRecord, RunStore
from overseer.tui import queue as q
from overseer.tui.memory_writes import MemoryWrites, review_case
from overseer.tui.queue import QueueFilter, QueueRow
from overseer.types import EdgeCase, Generalization, Label, Sample, SampleResult, Spec, SpecClause

GENERALIZATIONS: tuple[Generalization | None, ...] = (None, "in_domain", "domain_leakage", "emergent", "n/a")


@dataclass
class ItemDetail:
    row: QueueRow
    sample: Sample
    result: SampleResult
    clauses: dict[str, SpecClause | None]  # every clause a judge cited, None when the spec lacks it
    similar: list[tuple[EdgeCase, float]] = field(default_factory=list)
    review: ReviewRecord | None = None  # the active human decision, if any


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
        self.history: list[int] = []  # review ids decided in this session, for undo
        self.draft_note: str | None = None
        self.draft_generalization: Generalization | None = None
        self.draft_promote = False
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
        self._clear_draft()
        self.cursor = max(0, min(index, self.total - 1)) if self.total else 0

    def _refresh_row(self, index: int) -> None:
        self._pages.pop(index // self.page_size, None)  # re-read the item's page: its status changed

    def _advance(self) -> None:
        following = q.next_index(self.store, self.filter, self.cursor)
        if following is None:
            following = q.next_index(self.store, self.filter, -1)  # wrap: earlier items skipped or undone
        self.goto(following if following is not None else self.cursor)

    def counts(self) -> dict[str, Any]:
        """For the header: pending, done today (by anyone, in this queue's scope), agreement so far."""
        statuses = q.status_counts(self.store, replace(self.filter, status=None))
        today = datetime.now(UTC).date().isoformat()
        reviews = self._scope_reviews()
        agreed = [r.label == r.judge_label for r in reviews]
        return {"pending": statuses.get("pending", 0), "skipped": statuses.get("skipped", 0),
                "done": statuses.get("done", 0), "done_today": sum(r.created_at.startswith(today) for r in reviews),
                "agreement": sum(agreed) / len(agreed) if agreed else None, "total": self.total}

    def _scope_reviews(self) -> list[ReviewRecord]:
        return self.store.reviews(self.filter.run_id)

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

    # --- drafts: what the next decision carries --------------------------------------------------------------
    def cycle_generalization(self) -> Generalization | None:
        at = GENERALIZATIONS.index(self.draft_generalization)
        self.draft_generalization = GENERALIZATIONS[(at + 1) % len(GENERALIZATIONS)]
        return self.draft_generalization

    def set_note(self, note: str | None) -> None:
        self.draft_note = note.strip() if note and note.strip() else None

    def toggle_promote(self) -> bool:
        self.draft_promote = not self.draft_promote
        return self.draft_promote

    def _clear_draft(self) -> None:
        self.draft_note, self.draft_generalization, self.draft_promote = None, None, False

    # --- decisions ------------------------------------------------------------------------------------------
    def decide(self, label: Label, note: str | None = None, generalization: Generalization | None = None,
               promote: bool = False) -> Decision:
        row = self.current
        if row is None:
            raise OverseerError("the queue is empty")
        from overseer.memory.store import case_id

        detail = self.detail(row, similar=0)
        assert detail is not None
        note = note if note is not None else self.draft_note
        generalization = generalization or self.draft_generalization
        promote = promote or self.draft_promote
        sample = detail.sample
        edge_id = case_id(sample.context_text() or None, sample.response,
                          record_id=f"review:{row.run_id}:{row.sample_id}")
        review = self.store.record_review(run_id=row.run_id, sample_id=row.sample_id, label=label,
                                          reviewer=self.reviewer, blind=self.blind, generalization=generalization,
                                          note=note, judge_label=row.judge_label, promoted=promote,
                                          edge_case_id=edge_id if self.with_memory else None)
        self.history.append(review.id)
        memory_error = self._remember(review, sample) if self.with_memory else None
        self._refresh_row(self.cursor)
        self._advance()
        return Decision(review, review.edge_case_id, memory_error, self._improvement_due())

    def skip(self) -> None:
        row = self.current
        if row is None:
            return
        self.store.set_review_status(row.run_id, row.sample_id, "skipped")
        self._refresh_row(self.cursor)
        self._advance()

    def undo(self) -> ReviewRecord | None:
        """Withdraw the last decision of this session (or, after a reopen, this reviewer's last one): the item
        goes back to pending, its edge case leaves the memory, and the cursor returns to it."""
        last = self.store.review(self.history.pop()) if self.history else \
            self.store.last_review(self.filter.run_id, self.reviewer)
        if last is None or last.status != "active":
            return None
        restored = self.store.undo_review(last.id)
        if self.with_memory and last.edge_case_id:
            sample = self.detail_sample(last.run_id, last.sample_id)
            self._forget(last.edge_case_id) if restored is None else self._remember(restored, sample)
        self._pages.clear()
        index = q.index_of(self.store, self.filter, last.run_id, last.sample_id)
        self.goto(index if index is not None else self.cursor)
        return last

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

    async def improve(self) -> str:
        """One optimizer round on everything labelled (reviews included); returns a one-line outcome."""
        from overseer.optimize.learner import all_examples, make_optimizer

        store = RunStore(self.store.path)  # its own connection: the round's transactions interleave with ours
        try:
            examples = all_examples(self.settings, store)
            if len(examples) < 10:
                return f"improvement skipped: only {len(examples)} labelled samples"
            run_id = self.filter.run_id or (self.current.run_id if self.current else None)
            spec = self.spec_for(run_id) if run_id else load_spec(None)
            optimizer = make_optimizer(self.settings, store, spec, examples=examples, seed=self._last_trigger)
            outcomes = await optimizer.run(1)
        finally:
            store.close()
        if not outcomes:
            return "improvement: no round ran"
        o = outcomes[-1]
        return f"improvement round {o.status}: {o.reason}"

    def stats(self) -> dict[str, Any]:
        from overseer.tui.stats import session_stats

        return session_stats(self.store, self._scope_reviews(), self.filter.run_id)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
