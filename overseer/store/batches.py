"""The `batches` and `batch_requests` tables: the provider batch jobs of a `judge --batch` run.

A request's life: `pending` (recorded, in no batch yet) → `submitted` (in a batch the provider accepted) →
`succeeded` (its reply is kept) | `retry` (expired, cancelled or a transient error: goes in the next batch, or is
asked interactively) | `failed` (a 4xx, or out of attempts: the judge records an error verdict). A batch is
`submitting` from just before the provider's create() call until its id is recorded: a crash in between leaves a
`submitting` row that resume reconciles with the provider's own list, so no request is ever sent twice."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from overseer.store.db import Database
from overseer.types import utcnow


@dataclass
class BatchRequest:
    custom_id: str
    judge_id: str
    sample_id: str
    round: int
    body: dict[str, Any]
    state: str
    attempts: int = 0
    batch_id: str | None = None
    result_kind: str | None = None  # "message" | "chat_completion" (a provider reply) | "completion" (interactive)
    result: Any = None
    error: str | None = None


@dataclass
class BatchInfo:
    id: str
    run_id: str
    judge_id: str
    backend: str
    round: int
    provider_id: str | None
    status: str
    n_requests: int
    provider_status: str | None
    created_at: str


@dataclass
class Outcome:
    """What a finished batch said about one of its requests."""

    custom_id: str
    state: str  # succeeded | retry | failed
    result_kind: str | None = None
    result: Any = None
    error: str | None = None


class BatchTables:
    db: Database

    def batch_requests(self, run_id: str) -> dict[str, BatchRequest]:
        """Every recorded request of the run, without its body (a whole prompt: the replay never needs it)."""
        rows = self.db.all("SELECT custom_id, judge_id, sample_id, round, state, attempts, batch_id, result_kind, "
                           "result_json, error FROM batch_requests WHERE run_id = ?", (run_id,))
        return {r[0]: BatchRequest(r[0], r[1], r[2], r[3], {}, r[4], r[5], r[6], r[7],
                                   json.loads(r[8]) if r[8] is not None else None, r[9]) for r in rows}

    def unsent_requests(self, run_id: str, states: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """(judge_id, custom_id, body) of the requests in `states` that no batch holds, for the next batch."""
        marks = ", ".join("?" * len(states))
        rows = self.db.all(f"SELECT judge_id, custom_id, body_json FROM batch_requests WHERE run_id = ? AND "
                           f"batch_id IS NULL AND state IN ({marks}) ORDER BY created_at, custom_id",
                           (run_id, *states))
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def add_batch_requests(self, run_id: str, requests: Iterable[BatchRequest]) -> None:
        """Record new requests (one transaction). A custom_id already recorded is left as it is."""
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO batch_requests (run_id, custom_id, judge_id, sample_id, round, "
                           "body_json, state, created_at, updated_at) VALUES (?,?,?,?,?,?,'pending',?,?)",
                           [(run_id, r.custom_id, r.judge_id, r.sample_id, r.round, json.dumps(r.body), now, now)
                            for r in requests])

    def open_batch(self, run_id: str, judge_id: str, backend: str, round_: int,
                   custom_ids: Sequence[str]) -> str:
        """Claim `custom_ids` (pending or retry, in no live batch) for a new batch about to be created; one
        transaction. Returns the batch's local id (sent to the provider as metadata where it takes any)."""
        batch_id = f"ob-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            db.execute("INSERT INTO batches (id, run_id, judge_id, backend, round, status, n_requests, created_at, "
                       "updated_at) VALUES (?,?,?,?,?,'submitting',?,?,?)",
                       (batch_id, run_id, judge_id, backend, round_, len(custom_ids), now, now))
            db.executemany("UPDATE batch_requests SET batch_id = ?, updated_at = ? WHERE run_id = ? AND "
                           "custom_id = ? AND state IN ('pending', 'retry') AND batch_id IS NULL",
                           [(batch_id, now, run_id, c) for c in custom_ids])
        return batch_id

    def batch_submitted(self, batch_id: str, provider_id: str, provider_status: str | None = None) -> None:
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            db.execute("UPDATE batches SET status = 'submitted', provider_id = ?, provider_status = ?, "
                       "updated_at = ? WHERE id = ?", (provider_id, provider_status, now, batch_id))
            db.execute("UPDATE batch_requests SET state = 'submitted', attempts = attempts + 1, updated_at = ? "
                       "WHERE batch_id = ? AND state IN ('pending', 'retry')", (now, batch_id))

    def abandon_batch(self, batch_id: str) -> None:
        """The provider never got this batch (create failed, or resume found no trace of it): its requests go
        back to the queue of the next batch."""
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            db.execute("UPDATE batches SET status = 'abandoned', updated_at = ? WHERE id = ?", (now, batch_id))
            db.execute("UPDATE batch_requests SET batch_id = NULL, updated_at = ? WHERE batch_id = ? AND "
                       "state IN ('pending', 'retry')", (now, batch_id))

    def batches(self, run_id: str, status: str | None = None) -> list[BatchInfo]:
        query = ("SELECT id, run_id, judge_id, backend, round, provider_id, status, n_requests, provider_status, "
                 "created_at FROM batches WHERE run_id = ?")
        args: tuple[str, ...] = (run_id,)
        if status:
            query, args = query + " AND status = ?", (run_id, status)
        return [BatchInfo(*r) for r in self.db.all(query + " ORDER BY round, created_at, id", args)]

    def known_provider_ids(self) -> set[str]:
        return {r[0] for r in self.db.all("SELECT provider_id FROM batches WHERE provider_id IS NOT NULL")}

    def set_provider_status(self, batch_id: str, provider_status: str) -> None:
        self.db.execute("UPDATE batches SET provider_status = ?, updated_at = ? WHERE id = ?",
                        (provider_status, utcnow().isoformat(), batch_id))

    def ingest_batch(self, batch_id: str, outcomes: Iterable[Outcome], provider_status: str,
                     max_attempts: int) -> None:
        """Record a finished batch's outcomes and close it, in one transaction. A request the results do not
        mention (an expired or cancelled batch) is retried; a retry out of attempts is failed."""
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            for o in outcomes:
                db.execute("UPDATE batch_requests SET state = ?, result_kind = ?, result_json = ?, error = ?, "
                           "updated_at = ? WHERE batch_id = ? AND custom_id = ? AND state = 'submitted'",
                           (o.state, o.result_kind, json.dumps(o.result) if o.result is not None else None,
                            o.error, now, batch_id, o.custom_id))
            db.execute("UPDATE batch_requests SET state = 'retry', error = ?, updated_at = ? WHERE batch_id = ? "
                       "AND state = 'submitted'", (f"no result: the batch ended {provider_status}", now, batch_id))
            db.execute("UPDATE batch_requests SET state = 'failed', error = error || ?, updated_at = ? "
                       "WHERE batch_id = ? AND state = 'retry' AND attempts >= ?",
                       (f" (after {max_attempts} batch attempt(s))", now, batch_id, max_attempts))
            # A retry belongs to no batch until the next one claims it.
            db.execute("UPDATE batch_requests SET batch_id = NULL WHERE batch_id = ? AND state = 'retry'",
                       (batch_id,))
            db.execute("UPDATE batches SET status = 'ingested', provider_status = ?, updated_at = ? WHERE id = ?",
                       (provider_status, now, batch_id))

    def set_request_result(self, run_id: str, custom_id: str, result_kind: str, result: Any) -> None:
        """A retry answered interactively (`--retry interactive`)."""
        self.db.execute("UPDATE batch_requests SET state = 'succeeded', result_kind = ?, result_json = ?, "
                        "updated_at = ? WHERE run_id = ? AND custom_id = ?",
                        (result_kind, json.dumps(result), utcnow().isoformat(), run_id, custom_id))

    def batch_counts(self, run_id: str) -> dict[str, int]:
        """Requests by state; `in_batch` counts pending or retry requests a live batch has already claimed."""
        counts = {state: n for state, n in self.db.all(
            "SELECT state, COUNT(*) FROM batch_requests WHERE run_id = ? GROUP BY state", (run_id,))}
        counts["submissions"] = int(self.db.scalar(
            "SELECT COALESCE(SUM(attempts), 0) FROM batch_requests WHERE run_id = ?", (run_id,)) or 0)
        return counts
