"""The review queue as SQL: filters, sort, counts and one page of light rows at a time.

Everything a queue row shows (preview, judges' labels, the human decision) is computed by SQLite, so opening a
10,000-item queue parses no JSON in Python; only the item on screen is loaded whole (see state.py).
The listing covers every status (pending, skipped, done) in a fixed order: a decision changes an item's status,
never its position, so page offsets stay valid for the whole session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overseer.errors import OverseerError
from overseer.store.runs import RunStore

SORTS: dict[str, str] = {
    "queue": "q.created_at",
    "id": "q.sample_id",
    "confidence": "json_extract(r.result_json, '$.aggregate.confidence')",
    "reason": "q.reasons_json",
    "label": "r.label",
}
PREVIEW_CHARS = 100


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
            parts.append("EXISTS (SELECT 1 FROM json_each(q.reasons_json) WHERE value = ?)")
            args.append(self.reason)
        if self.label == "unscored":
            parts.append("r.label IS NULL")
        elif self.label:
            parts.append("r.label = ?")
            args.append(self.label)
        if self.clause:
            parts.append("EXISTS (SELECT 1 FROM json_each(r.result_json, '$.verdicts') v, "
                         "json_each(v.value, '$.clause_ids') c WHERE c.value = ?)")
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


_FROM = ("FROM review_queue q JOIN results r ON r.run_id = q.run_id AND r.sample_id = q.sample_id "
         "JOIN samples s ON s.run_id = q.run_id AND s.sample_id = q.sample_id")


def count(store: RunStore, flt: QueueFilter) -> int:
    where, args = flt.where()
    return int(store.db.execute(f"SELECT COUNT(*) {_FROM} WHERE {where}", args).fetchone()[0])


def page(store: RunStore, flt: QueueFilter, offset: int, limit: int) -> list[QueueRow]:
    where, args = flt.where()
    rows = store.db.execute(
        "SELECT q.run_id, q.sample_id, q.reasons_json, q.status, r.label, "
        "(SELECT group_concat(v.judge_id || '=' || coalesce(v.label, 'unscored'), char(31)) FROM verdicts v "
        " WHERE v.run_id = q.run_id AND v.sample_id = q.sample_id), "
        f"substr(json_extract(s.sample_json, '$.response'), 1, {PREVIEW_CHARS * 2}), "
        "(SELECT w.label FROM reviews w WHERE w.run_id = q.run_id AND w.sample_id = q.sample_id "
        " AND w.status = 'active') "
        f"{_FROM} WHERE {where} ORDER BY {flt.order()} LIMIT ? OFFSET ?", [*args, limit, offset])
    out = []
    for i, (run_id, sample_id, reasons, status, label, judges, preview, human) in enumerate(rows):
        pairs = [tuple(p.rsplit("=", 1)) for p in (judges or "").split("\x1f") if p]
        out.append(QueueRow(offset + i, run_id, sample_id, _json_list(reasons), status, label,
                            [(a, b) for a, b in pairs], " ".join((preview or "").split())[:PREVIEW_CHARS], human))
    return out


def next_index(store: RunStore, flt: QueueFilter, after: int, status: str = "pending") -> int | None:
    """Position (in this filter's order) of the first item with `status` after position `after`."""
    where, args = flt.where()
    row = store.db.execute(
        f"SELECT n FROM (SELECT ROW_NUMBER() OVER (ORDER BY {flt.order()}) - 1 AS n, q.status AS st {_FROM} "
        f"WHERE {where}) WHERE st = ? AND n > ? ORDER BY n LIMIT 1", [*args, status, after]).fetchone()
    return int(row[0]) if row else None


def index_of(store: RunStore, flt: QueueFilter, run_id: str, sample_id: str) -> int | None:
    where, args = flt.where()
    row = store.db.execute(
        f"SELECT n FROM (SELECT ROW_NUMBER() OVER (ORDER BY {flt.order()}) - 1 AS n, q.run_id AS a, "
        f"q.sample_id AS b {_FROM} WHERE {where}) WHERE a = ? AND b = ?", [*args, run_id, sample_id]).fetchone()
    return int(row[0]) if row else None


def status_counts(store: RunStore, flt: QueueFilter) -> dict[str, int]:
    where, args = flt.where()
    return dict(store.db.execute(f"SELECT q.status, COUNT(*) {_FROM} WHERE {where} GROUP BY q.status", args))


def _json_list(text: str) -> list[str]:
    import json

    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []
