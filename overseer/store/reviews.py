"""Human reviews and the review queue's read model.

A decision and its queue item change in one transaction. An undo or an override keeps the row (status undone /
superseded): who decided what stays auditable; only `active` rows are decisions.

The queue listing (filters, sort, counts, one page of light rows) is computed by SQLite, so opening a
10,000-item queue parses no JSON in Python; only the item on screen is loaded whole. It covers every status
(pending, skipped, done) in a fixed order: a decision changes an item's status, never its position, so page
offsets stay valid for a whole review session."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError, RunError
from overseer.store.db import Database, concat_rows, json_get, json_list_has, json_nested_list_has
from overseer.types import ReviewItem, Sample, utcnow

SORTS: dict[str, str] = {
    "queue": "q.created_at",
    "id": "q.sample_id",
    "confidence": json_get("r.result_json", "$.aggregate.confidence"),
    "reason": "q.reasons_json",
    "label": "r.label",
}
PREVIEW_CHARS = 100
_UNIT_SEPARATOR = 31  # joins the judges' labels of one row: a character no judge id or label holds


@dataclass
class ReviewRecord:
    """One human decision on a review-queue item (`status`: active | superseded | undone)."""

    id: int
    run_id: str
    sample_id: str
    label: str
    generalization: str | None
    note: str | None
    reviewer: str
    blind: bool
    previous_label: str | None
    judge_label: str | None
    promoted: bool
    edge_case_id: str | None
    status: str
    created_at: str
    undone_at: str | None


_REVIEW_COLUMNS = ("id, run_id, sample_id, label, generalization, note, reviewer, blind, previous_label, judge_label, "
                   "promoted, edge_case_id, status, created_at, undone_at")


def _review(row: tuple[Any, ...]) -> ReviewRecord:
    return ReviewRecord(id=row[0], run_id=row[1], sample_id=row[2], label=row[3], generalization=row[4], note=row[5],
                        reviewer=row[6], blind=bool(row[7]), previous_label=row[8], judge_label=row[9],
                        promoted=bool(row[10]), edge_case_id=row[11], status=row[12], created_at=row[13],
                        undone_at=row[14])


@dataclass
class QueueFilter:
    run_id: str | None = None
    reason: str | None = None
    label: str | None = None  # the judges' aggregate label; "unscored" for none
    clause: str | None = None  # cited by any judge
    search: str | None = None  # substring of the sample id or the sample's text
    status: str | None = None  # pending | skipped | done; None = all
    sort: str = "queue"

    def where(self) -> tuple[str, list[Any]]:
        parts, args = ["1 = 1"], []
        if self.run_id:
            parts.append("q.run_id = ?")
            args.append(self.run_id)
        if self.reason:
            parts.append(json_list_has("q.reasons_json"))
            args.append(self.reason)
        if self.label == "unscored":
            parts.append("r.label IS NULL")
        elif self.label:
            parts.append("r.label = ?")
            args.append(self.label)
        if self.clause:
            parts.append(json_nested_list_has("r.result_json", "$.verdicts", "$.clause_ids"))
            args.append(self.clause)
        if self.search:
            parts.append("(q.sample_id LIKE ? OR s.sample_json LIKE ?)")
            args += [f"%{self.search}%"] * 2
        if self.status:
            parts.append("q.status = ?")
            args.append(self.status)
        return " AND ".join(parts), args

    def order(self) -> str:
        if self.sort not in SORTS:
            raise OverseerError(f"unknown sort {self.sort!r} (one of: {', '.join(SORTS)})")
        return f"{SORTS[self.sort]}, q.run_id, q.sample_id"


@dataclass
class QueueRow:
    index: int
    run_id: str
    sample_id: str
    reasons: list[str]
    status: str
    judge_label: str | None
    judge_labels: list[tuple[str, str]] = field(default_factory=list)  # (judge id, label or "unscored")
    preview: str = ""
    human_label: str | None = None


_QUEUE_FROM = ("FROM review_queue q JOIN results r ON r.run_id = q.run_id AND r.sample_id = q.sample_id "
               "JOIN samples s ON s.run_id = q.run_id AND s.sample_id = q.sample_id")


class ReviewTables:
    """The `reviews` and `review_queue` tables (RunStore combines this with the other parts)."""

    db: Database
    path: Path

    # --- the queue ------------------------------------------------------------------------------------------
    def review_items(self, run_id: str | None = None, status: str = "pending") -> list[ReviewItem]:
        query = "SELECT run_id, sample_id, reasons_json, status, created_at FROM review_queue WHERE status = ?"
        args: tuple[Any, ...] = (status,)
        if run_id:
            query, args = query + " AND run_id = ?", (*args, run_id)
        return [ReviewItem(run_id=r[0], sample_id=r[1], reasons=json.loads(r[2]), status=r[3],
                           created_at=datetime.fromisoformat(r[4]))
                for r in self.db.all(query + " ORDER BY created_at, sample_id", args)]

    def set_review_status(self, run_id: str, sample_id: str, status: str) -> None:
        """Mark a queue item pending or skipped (done is set by `record_review` only)."""
        self.db.execute("UPDATE review_queue SET status = ? WHERE run_id = ? AND sample_id = ? AND status != 'done'",
                        (status, run_id, sample_id))

    def queue_count(self, flt: QueueFilter) -> int:
        where, args = flt.where()
        return int(self.db.scalar(f"SELECT COUNT(*) {_QUEUE_FROM} WHERE {where}", args))

    def queue_page(self, flt: QueueFilter, offset: int, limit: int) -> list[QueueRow]:
        where, args = flt.where()
        judges = concat_rows("v.judge_id || '=' || coalesce(v.label, 'unscored')", _UNIT_SEPARATOR)
        rows = self.db.all(
            "SELECT q.run_id, q.sample_id, q.reasons_json, q.status, r.label, "
            f"(SELECT {judges} FROM verdicts v WHERE v.run_id = q.run_id AND v.sample_id = q.sample_id), "
            f"substr({json_get('s.sample_json', '$.response')}, 1, {PREVIEW_CHARS * 2}), "
            "(SELECT w.label FROM reviews w WHERE w.run_id = q.run_id AND w.sample_id = q.sample_id "
            " AND w.status = 'active') "
            f"{_QUEUE_FROM} WHERE {where} ORDER BY {flt.order()} LIMIT ? OFFSET ?", [*args, limit, offset])
        out = []
        for i, (run_id, sample_id, reasons, status, label, labels, preview, human) in enumerate(rows):
            pairs = [tuple(p.rsplit("=", 1)) for p in (labels or "").split(chr(_UNIT_SEPARATOR)) if p]
            out.append(QueueRow(offset + i, run_id, sample_id, _json_list(reasons), status, label,
                                [(a, b) for a, b in pairs], " ".join((preview or "").split())[:PREVIEW_CHARS], human))
        return out

    def queue_next_index(self, flt: QueueFilter, after: int, status: str = "pending") -> int | None:
        """Position (in this filter's order) of the first item with `status` after position `after`."""
        where, args = flt.where()
        row = self.db.one(
            f"SELECT n FROM (SELECT ROW_NUMBER() OVER (ORDER BY {flt.order()}) - 1 AS n, q.status AS st "
            f"{_QUEUE_FROM} WHERE {where}) WHERE st = ? AND n > ? ORDER BY n LIMIT 1", [*args, status, after])
        return int(row[0]) if row else None

    def queue_index_of(self, flt: QueueFilter, run_id: str, sample_id: str) -> int | None:
        where, args = flt.where()
        row = self.db.one(
            f"SELECT n FROM (SELECT ROW_NUMBER() OVER (ORDER BY {flt.order()}) - 1 AS n, q.run_id AS a, "
            f"q.sample_id AS b {_QUEUE_FROM} WHERE {where}) WHERE a = ? AND b = ?", [*args, run_id, sample_id])
        return int(row[0]) if row else None

    def queue_status_counts(self, flt: QueueFilter) -> dict[str, int]:
        where, args = flt.where()
        return dict(self.db.all(f"SELECT q.status, COUNT(*) {_QUEUE_FROM} WHERE {where} GROUP BY q.status", args))

    # --- decisions ------------------------------------------------------------------------------------------
    def record_review(self, *, run_id: str, sample_id: str, label: str, reviewer: str, blind: bool,
                      generalization: str | None = None, note: str | None = None, judge_label: str | None = None,
                      promoted: bool = False, edge_case_id: str | None = None) -> ReviewRecord:
        """Write one decision and mark its queue item done, in one transaction. A decision on an item that
        already has one supersedes it and keeps the old label as `previous_label`."""
        with self.db.transaction() as db:
            before = db.one("SELECT id, label FROM reviews WHERE run_id = ? AND sample_id = ? AND "
                            "status = 'active'", (run_id, sample_id))
            if before:
                db.execute("UPDATE reviews SET status = 'superseded' WHERE id = ?", (before[0],))
            cursor = db.execute(
                "INSERT INTO reviews (run_id, sample_id, label, generalization, note, reviewer, blind, "
                "previous_label, judge_label, promoted, edge_case_id, status, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,'active',?)",
                (run_id, sample_id, label, generalization, note, reviewer, int(blind), before[1] if before else None,
                 judge_label, int(promoted), edge_case_id, utcnow().isoformat()))
            db.execute("UPDATE review_queue SET status = 'done' WHERE run_id = ? AND sample_id = ?",
                       (run_id, sample_id))
            review_id = int(cursor.lastrowid or 0)
        return self.review(review_id)

    def review(self, review_id: int) -> ReviewRecord:
        row = self.db.one(f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE id = ?", (review_id,))
        if row is None:
            raise RunError(f"no review {review_id} in {self.path}")
        return _review(row)

    def active_review(self, run_id: str, sample_id: str) -> ReviewRecord | None:
        row = self.db.one(f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE run_id = ? AND sample_id = ? AND "
                          "status = 'active'", (run_id, sample_id))
        return _review(row) if row else None

    def undo_review(self, review_id: int) -> ReviewRecord | None:
        """Withdraw an active decision. The decision it superseded (if any) becomes active again and is
        returned; without one the item goes back to pending."""
        with self.db.transaction() as db:
            row = db.one("SELECT run_id, sample_id FROM reviews WHERE id = ? AND status = 'active'", (review_id,))
            if row is None:
                raise RunError(f"review {review_id} is not an active decision")
            db.execute("UPDATE reviews SET status = 'undone', undone_at = ? WHERE id = ?",
                       (utcnow().isoformat(), review_id))
            older = db.one("SELECT id FROM reviews WHERE run_id = ? AND sample_id = ? AND status = "
                           "'superseded' AND id < ? ORDER BY id DESC LIMIT 1", (*row, review_id))
            if older:
                db.execute("UPDATE reviews SET status = 'active' WHERE id = ?", (older[0],))
            else:
                db.execute("UPDATE review_queue SET status = 'pending' WHERE run_id = ? AND sample_id = ?", row)
        return self.review(older[0]) if older else None

    def reviews(self, run_id: str | None = None, *, include_inactive: bool = False) -> list[ReviewRecord]:
        query = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE 1 = 1"
        args: tuple[Any, ...] = ()
        if not include_inactive:
            query += " AND status = 'active'"
        if run_id:
            query, args = query + " AND run_id = ?", (run_id,)
        return [_review(r) for r in self.db.all(query + " ORDER BY id", args)]

    def last_review(self, run_id: str | None = None, reviewer: str | None = None) -> ReviewRecord | None:
        query = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE status = 'active'"
        args: tuple[Any, ...] = ()
        for column, value in (("run_id", run_id), ("reviewer", reviewer)):
            if value:
                query, args = query + f" AND {column} = ?", (*args, value)
        row = self.db.one(query + " ORDER BY id DESC LIMIT 1", args)
        return _review(row) if row else None

    def count_reviews(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM reviews WHERE status = 'active'"))

    def reviewed_samples(self, run_id: str | None = None) -> list[tuple[Sample, str, str | None]]:
        """(sample, human label, note) of every active decision, oldest first."""
        query = ("SELECT s.sample_json, w.label, w.note FROM reviews w JOIN samples s ON s.run_id = w.run_id AND "
                 "s.sample_id = w.sample_id WHERE w.status = 'active'" + (" AND w.run_id = ?" if run_id else "")
                 + " ORDER BY w.id")
        return [(Sample.model_validate_json(blob), label, note)
                for blob, label, note in self.db.iterate(query, (run_id,) if run_id else ())]

    def review_edge_case_ids(self) -> set[str]:
        """Ids of the edge cases reviews wrote to the memory (undone and superseded ones included)."""
        return {r[0] for r in self.db.iterate("SELECT edge_case_id FROM reviews WHERE edge_case_id IS NOT NULL")}


def _json_list(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []
