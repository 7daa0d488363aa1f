"""The review queue for the TUI: filters, sort, counts and one page of light rows at a time. The queries live in
the store (overseer.store.reviews); these are the names the review session calls them by."""

from __future__ import annotations

from overseer.store.reviews import PREVIEW_CHARS, SORTS, QueueFilter, QueueRow
from overseer.store.runs import RunStore

__all__ = ["PREVIEW_CHARS", "SORTS", "QueueFilter", "QueueRow", "count", "index_of", "next_index", "page",
           "status_counts"]


def count(store: RunStore, flt: QueueFilter) -> int:
    return store.queue_count(flt)


def page(store: RunStore, flt: QueueFilter, offset: int, limit: int) -> list[QueueRow]:
    return store.queue_page(flt, offset, limit)


def next_index(store: RunStore, flt: QueueFilter, after: int, status: str = "pending") -> int | None:
    """Position (in this filter's order) of the first item with `status` after position `after`."""
    return store.queue_next_index(flt, after, status)


def index_of(store: RunStore, flt: QueueFilter, run_id: str, sample_id: str) -> int | None:
    return store.queue_index_of(flt, run_id, sample_id)


def status_counts(store: RunStore, flt: QueueFilter) -> dict[str, int]:
    return store.queue_status_counts(flt)
