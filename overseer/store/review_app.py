"""The review app's own tables: drafts typed on an item but not yet decided, and the improvement rounds the app
found due (run by a background `overseer improve`, never by the app; the outcome is kept for the app to show)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overseer.store.db import Database
from overseer.types import utcnow


@dataclass
class Draft:
    note: str | None = None
    generalization: str | None = None
    promote: bool = False

    def empty(self) -> bool:
        return not (self.note or self.generalization or self.promote)


@dataclass
class ImprovementRequest:
    id: int
    created_at: str
    reviews: int  # active decisions when the round fell due
    status: str  # due | running | done | failed
    pid: int | None
    log_path: str | None
    outcome: str | None


_REQUEST_COLUMNS = "id, created_at, reviews, status, pid, log_path, outcome"


class ReviewAppTables:
    """The `review_drafts` and `improvement_requests` tables (RunStore combines this with the other parts)."""

    db: Database

    # --- drafts ---------------------------------------------------------------------------------------------
    def draft(self, run_id: str, sample_id: str) -> Draft | None:
        row = self.db.one("SELECT note, generalization, promote FROM review_drafts WHERE run_id = ? AND "
                          "sample_id = ?", (run_id, sample_id))
        return Draft(row[0], row[1], bool(row[2])) if row else None

    def save_draft(self, run_id: str, sample_id: str, draft: Draft) -> None:
        """Keep the draft (an empty one is deleted)."""
        if draft.empty():
            self.db.execute("DELETE FROM review_drafts WHERE run_id = ? AND sample_id = ?", (run_id, sample_id))
            return
        self.db.execute("INSERT INTO review_drafts (run_id, sample_id, note, generalization, promote, updated_at) "
                        "VALUES (?,?,?,?,?,?) ON CONFLICT(run_id, sample_id) DO UPDATE SET note = excluded.note, "
                        "generalization = excluded.generalization, promote = excluded.promote, "
                        "updated_at = excluded.updated_at",
                        (run_id, sample_id, draft.note, draft.generalization, int(draft.promote),
                         utcnow().isoformat()))

    # --- improvement rounds the app found due ----------------------------------------------------------------
    def request_improvement(self, reviews: int) -> int:
        now = utcnow().isoformat()
        cursor = self.db.execute("INSERT INTO improvement_requests (created_at, reviews, status, updated_at) "
                                 "VALUES (?, ?, 'due', ?)", (now, reviews, now))
        return int(cursor.lastrowid or 0)

    def update_improvement(self, request_id: int, status: str, *, pid: int | None = None,
                           log_path: str | None = None, outcome: str | None = None) -> None:
        self.db.execute("UPDATE improvement_requests SET status = ?, pid = COALESCE(?, pid), "
                        "log_path = COALESCE(?, log_path), outcome = COALESCE(?, outcome), updated_at = ? "
                        "WHERE id = ?", (status, pid, log_path, outcome, utcnow().isoformat(), request_id))

    def improvement_requests(self, status: str | None = None) -> list[ImprovementRequest]:
        query = f"SELECT {_REQUEST_COLUMNS} FROM improvement_requests"
        args: tuple[Any, ...] = ()
        if status:
            query, args = query + " WHERE status = ?", (status,)
        return [ImprovementRequest(*row) for row in self.db.all(query + " ORDER BY id", args)]

    def count_reviews_since(self, run_id: str | None, since: str) -> int:
        """Active decisions made at or after the ISO time `since` (the header's "done today")."""
        query = "SELECT COUNT(*) FROM reviews WHERE status = 'active' AND created_at >= ?"
        args: tuple[str, ...] = (since,)
        if run_id:
            query, args = query + " AND run_id = ?", (since, run_id)
        return int(self.db.scalar(query, args))

    # --- the stats screen ------------------------------------------------------------------------------------
    def review_label_counts(self, run_id: str | None, by: str | None) -> list[tuple[str, str, str | None, int]]:
        """(group, human label, judge label, count) over the active decisions, grouped by `by`: "reviewer",
        "reason" (an item queued for two reasons counts in both) or None (one group, ""). Counted by SQLite, so
        the stats screen stays quick on a 10,000-item queue."""
        group = {"reviewer": "r.reviewer", "reason": "j.value", None: "''"}[by]
        query = (f"SELECT {group}, r.label, r.judge_label, COUNT(*) FROM reviews r "
                 + ("JOIN review_queue q ON q.run_id = r.run_id AND q.sample_id = r.sample_id, "
                    "json_each(q.reasons_json) j " if by == "reason" else "")
                 + "WHERE r.status = 'active'")
        args: tuple[Any, ...] = ()
        if run_id:
            query, args = query + " AND r.run_id = ?", (run_id,)
        return [tuple(row) for row in self.db.all(query + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", args)]
