"""Run store: one SQLite file in the workspace. Runs, their samples, results (aggregate + verdicts), the review
queue, input errors and the verdict cache. Forward-only migrations keyed by PRAGMA user_version.

Each result is committed in one transaction before it is reported anywhere else, so a crash can lose at most the
calls in flight, never a finished verdict."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from overseer.errors import RunError
from overseer.types import ReviewItem, Sample, SampleResult, Verdict, utcnow

MIGRATIONS: list[str] = [
    # 1: the judging core
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, input_path TEXT, input_sha256 TEXT,
        output_path TEXT, config_json TEXT NOT NULL, status TEXT NOT NULL, n_inputs INTEGER DEFAULT 0,
        n_input_errors INTEGER DEFAULT 0, finished_at TEXT);
    CREATE TABLE samples (
        run_id TEXT NOT NULL REFERENCES runs(id), sample_id TEXT NOT NULL, line INTEGER,
        sample_json TEXT NOT NULL, PRIMARY KEY (run_id, sample_id));
    CREATE TABLE results (
        run_id TEXT NOT NULL REFERENCES runs(id), sample_id TEXT NOT NULL, label TEXT, route TEXT NOT NULL,
        result_json TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, sample_id));
    CREATE TABLE verdicts (
        run_id TEXT NOT NULL, sample_id TEXT NOT NULL, judge_id TEXT NOT NULL, status TEXT NOT NULL,
        label TEXT, prompt_hash TEXT, model TEXT, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
        cached INTEGER, PRIMARY KEY (run_id, sample_id, judge_id));
    CREATE TABLE review_queue (
        run_id TEXT NOT NULL, sample_id TEXT NOT NULL, reasons_json TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', created_at TEXT NOT NULL, PRIMARY KEY (run_id, sample_id));
    CREATE TABLE input_errors (
        run_id TEXT NOT NULL, line INTEGER, message TEXT NOT NULL, raw TEXT);
    CREATE TABLE cache (key TEXT PRIMARY KEY, verdict_json TEXT NOT NULL, created_at TEXT NOT NULL);
    """,
    # 2: the prompt optimizer — every candidate (accepted or not) and the saved state of each round
    """
    CREATE TABLE prompt_candidates (
        id TEXT PRIMARY KEY, round_id TEXT NOT NULL, role TEXT NOT NULL, parent_version INTEGER NOT NULL,
        parent_hash TEXT NOT NULL, hash TEXT NOT NULL, text TEXT NOT NULL, status TEXT NOT NULL,
        reason TEXT, metrics_json TEXT NOT NULL DEFAULT '{}', diff TEXT, version INTEGER,
        created_at TEXT NOT NULL);
    CREATE TABLE optimizer_rounds (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, stage TEXT NOT NULL,
        status TEXT NOT NULL, state_json TEXT NOT NULL);
    """,
    # 3: human reviews from the TUI. An undo or an override keeps the row (status undone / superseded): the
    # history of who decided what stays auditable; only `active` rows are decisions.
    """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, sample_id TEXT NOT NULL, label TEXT NOT NULL,
        generalization TEXT, note TEXT, reviewer TEXT NOT NULL, blind INTEGER NOT NULL DEFAULT 0,
        previous_label TEXT, judge_label TEXT, promoted INTEGER NOT NULL DEFAULT 0, edge_case_id TEXT,
        status TEXT NOT NULL DEFAULT 'active', created_at TEXT NOT NULL, undone_at TEXT);
    CREATE INDEX reviews_by_item ON reviews (run_id, sample_id, status);
    CREATE INDEX review_queue_by_order ON review_queue (created_at, sample_id);
    CREATE INDEX review_queue_by_status ON review_queue (status, run_id);
    """,
]


@dataclass
class RunInfo:
    id: str
    created_at: str
    input_path: str | None
    output_path: str | None
    status: str
    n_inputs: int
    n_input_errors: int
    n_results: int
    config: dict[str, Any]


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


class RunStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self.db.execute("PRAGMA busy_timeout=10000")
        self._migrate()

    def _migrate(self) -> None:
        current = self.db.execute("PRAGMA user_version").fetchone()[0]
        if current > len(MIGRATIONS):
            raise RunError(f"{self.path} was written by a newer overseer (schema {current}); upgrade overseer")
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            # One script per transaction: the schema and its version number move together or not at all.
            self.db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> RunStore._Tx:
        return RunStore._Tx(self.db)

    def close(self) -> None:
        self.db.close()

    # --- runs -----------------------------------------------------------------------------------------------
    def create_run(self, *, input_path: str | None, input_sha256: str | None, output_path: str | None,
                   config: dict[str, Any]) -> str:
        run_id = f"run-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        with self.transaction() as db:
            db.execute("INSERT INTO runs (id, created_at, input_path, input_sha256, output_path, config_json, "
                       "status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                       (run_id, utcnow().isoformat(), input_path, input_sha256, output_path,
                        json.dumps(config, default=str)))
        return run_id

    def set_status(self, run_id: str, status: str) -> None:
        finished = utcnow().isoformat() if status == "finished" else None
        self.db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, finished, run_id))

    def get_run(self, run_id: str) -> RunInfo:
        row = self.db.execute(_RUN_SELECT + " WHERE r.id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunError(f"no run {run_id!r} in {self.path} (see `overseer runs list`)")
        return _run_info(row)

    def list_runs(self) -> list[RunInfo]:
        return [_run_info(r) for r in self.db.execute(_RUN_SELECT + " ORDER BY r.created_at DESC, r.id DESC")]

    def latest_unfinished(self, input_path: str) -> RunInfo | None:
        row = self.db.execute(_RUN_SELECT + " WHERE r.input_path = ? AND r.status != 'finished' "
                              "ORDER BY r.created_at DESC LIMIT 1", (input_path,)).fetchone()
        return _run_info(row) if row else None

    def latest_for_input(self, input_path: str) -> RunInfo | None:
        row = self.db.execute(_RUN_SELECT + " WHERE r.input_path = ? ORDER BY r.created_at DESC LIMIT 1",
                              (input_path,)).fetchone()
        return _run_info(row) if row else None

    # --- samples and results ---------------------------------------------------------------------------------
    def add_samples(self, run_id: str, samples: list[tuple[int, Sample]],
                    errors: list[tuple[int, str, str]]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO samples (run_id, sample_id, line, sample_json) VALUES (?,?,?,?)",
                           [(run_id, s.id, line, s.model_dump_json()) for line, s in samples])
            db.execute("DELETE FROM input_errors WHERE run_id = ?", (run_id,))
            db.executemany("INSERT INTO input_errors (run_id, line, message, raw) VALUES (?,?,?,?)",
                           [(run_id, line, msg, raw) for line, msg, raw in errors])
            db.execute("UPDATE runs SET n_inputs = (SELECT COUNT(*) FROM samples WHERE run_id = ?), "
                       "n_input_errors = ? WHERE id = ?", (run_id, len(errors), run_id))

    def samples(self, run_id: str) -> list[Sample]:
        rows = self.db.execute("SELECT sample_json FROM samples WHERE run_id = ? ORDER BY line", (run_id,))
        return [Sample.model_validate_json(r[0]) for r in rows]

    def finished_ids(self, run_id: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT sample_id FROM results WHERE run_id = ?", (run_id,))}

    def save_result(self, result: SampleResult) -> None:
        """Commit one sample's aggregate, verdicts and (if routed there) its review-queue entry atomically."""
        agg = result.aggregate
        now = utcnow().isoformat()
        with self.transaction() as db:
            # rowid order = commit order, which `results()` replays (an output file in judging order).
            db.execute("INSERT OR REPLACE INTO results (run_id, sample_id, label, route, result_json, "
                       "created_at) VALUES (?,?,?,?,?,?)",
                       (result.run_id, result.sample_id, agg.label, agg.route, result.model_dump_json(), now))
            db.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(result.run_id, v.sample_id, v.provenance.judge_id, v.status, v.label, v.provenance.prompt_hash,
                  v.provenance.model, v.provenance.usage.input_tokens, v.provenance.usage.output_tokens,
                  v.provenance.cost_usd, int(v.provenance.cached)) for v in result.verdicts])
            if agg.review_reasons:
                # OR IGNORE: saving a result again must not send an already-reviewed item back to pending.
                db.execute("INSERT OR IGNORE INTO review_queue (run_id, sample_id, reasons_json, status, "
                           "created_at) VALUES (?,?,?,'pending',?)",
                           (result.run_id, result.sample_id, json.dumps(agg.review_reasons), now))

    def results(self, run_id: str) -> Iterator[SampleResult]:
        for (blob,) in self.db.execute("SELECT result_json FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)):
            yield SampleResult.model_validate_json(blob)

    def result(self, run_id: str, sample_id: str) -> SampleResult | None:
        row = self.db.execute("SELECT result_json FROM results WHERE run_id = ? AND sample_id = ?",
                              (run_id, sample_id)).fetchone()
        return SampleResult.model_validate_json(row[0]) if row else None

    def review_items(self, run_id: str | None = None, status: str = "pending") -> list[ReviewItem]:
        query = "SELECT run_id, sample_id, reasons_json, status, created_at FROM review_queue WHERE status = ?"
        args: tuple[Any, ...] = (status,)
        if run_id:
            query, args = query + " AND run_id = ?", (*args, run_id)
        return [ReviewItem(run_id=r[0], sample_id=r[1], reasons=json.loads(r[2]), status=r[3],
                           created_at=datetime.fromisoformat(r[4]))
                for r in self.db.execute(query + " ORDER BY created_at, sample_id", args)]

    def input_errors(self, run_id: str) -> list[tuple[int, str, str]]:
        return list(self.db.execute("SELECT line, message, raw FROM input_errors WHERE run_id = ? ORDER BY line",
                                    (run_id,)))

    def totals(self, run_id: str) -> dict[str, float]:
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                              "COALESCE(SUM(cost_usd), 0), COALESCE(SUM(cached), 0), "
                              "COALESCE(SUM(status = 'error'), 0), COALESCE(SUM(status = 'unscored'), 0) "
                              "FROM verdicts WHERE run_id = ?", (run_id,)).fetchone()
        keys = ("verdicts", "input_tokens", "output_tokens", "cost_usd", "cached", "errors", "unscored")
        return dict(zip(keys, row, strict=True))

    def scripted_verdicts(self, run_id: str | None = None) -> int:
        """Verdicts the scripted test backend wrote, in one run or all: the stats that show them say synthetic."""
        query = ("SELECT COUNT(*) FROM results, json_each(results.result_json, '$.verdicts') "
                 "WHERE json_extract(json_each.value, '$.provenance.scripted')")
        params: tuple[str, ...] = ()
        if run_id:
            query, params = query + " AND results.run_id = ?", (run_id,)
        return int(self.db.execute(query, params).fetchone()[0])

    # --- human reviews ----------------------------------------------------------------------------------------
    def record_review(self, *, run_id: str, sample_id: str, label: str, reviewer: str, blind: bool,
                      generalization: str | None = None, note: str | None = None, judge_label: str | None = None,
                      promoted: bool = False, edge_case_id: str | None = None) -> ReviewRecord:
        """Write one decision and mark its queue item done, in one transaction. A decision on an item that
        already has one supersedes it and keeps the old label as `previous_label`."""
        with self.transaction() as db:
            before = db.execute("SELECT id, label FROM reviews WHERE run_id = ? AND sample_id = ? AND "
                                "status = 'active'", (run_id, sample_id)).fetchone()
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
        row = self.db.execute(f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE id = ?", (review_id,)).fetchone()
        if row is None:
            raise RunError(f"no review {review_id} in {self.path}")
        return _review(row)

    def undo_review(self, review_id: int) -> ReviewRecord | None:
        """Withdraw an active decision. The decision it superseded (if any) becomes active again and is
        returned; without one the item goes back to pending."""
        with self.transaction() as db:
            row = db.execute("SELECT run_id, sample_id FROM reviews WHERE id = ? AND status = 'active'",
                             (review_id,)).fetchone()
            if row is None:
                raise RunError(f"review {review_id} is not an active decision")
            db.execute("UPDATE reviews SET status = 'undone', undone_at = ? WHERE id = ?",
                       (utcnow().isoformat(), review_id))
            older = db.execute("SELECT id FROM reviews WHERE run_id = ? AND sample_id = ? AND status = "
                               "'superseded' AND id < ? ORDER BY id DESC LIMIT 1", (*row, review_id)).fetchone()
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
        return [_review(r) for r in self.db.execute(query + " ORDER BY id", args)]

    def last_review(self, run_id: str | None = None, reviewer: str | None = None) -> ReviewRecord | None:
        query = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE status = 'active'"
        args: tuple[Any, ...] = ()
        for column, value in (("run_id", run_id), ("reviewer", reviewer)):
            if value:
                query, args = query + f" AND {column} = ?", (*args, value)
        row = self.db.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return _review(row) if row else None

    def count_reviews(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM reviews WHERE status = 'active'").fetchone()[0])

    def set_review_status(self, run_id: str, sample_id: str, status: str) -> None:
        """Mark a queue item pending or skipped (done is set by `record_review` only)."""
        self.db.execute("UPDATE review_queue SET status = ? WHERE run_id = ? AND sample_id = ? AND status != 'done'",
                        (status, run_id, sample_id))

    # --- prompt optimizer ------------------------------------------------------------------------------------
    def save_round(self, round_id: str, stage: str, status: str, state: dict[str, Any]) -> None:
        """Persist an optimizer round after each stage, so an interrupted round resumes where it stopped."""
        now = utcnow().isoformat()
        self.db.execute("INSERT INTO optimizer_rounds (id, created_at, updated_at, stage, status, state_json) "
                        "VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, "
                        "stage = excluded.stage, status = excluded.status, state_json = excluded.state_json",
                        (round_id, now, now, stage, status, json.dumps(state, default=str)))

    def count_rounds(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM optimizer_rounds").fetchone()[0])

    def unfinished_round(self) -> tuple[str, str, dict[str, Any]] | None:
        row = self.db.execute("SELECT id, stage, state_json FROM optimizer_rounds WHERE status = 'running' "
                              "ORDER BY created_at DESC LIMIT 1").fetchone()
        return (row[0], row[1], json.loads(row[2])) if row else None

    def record_candidate(self, *, candidate_id: str, round_id: str, role: str, parent_version: int,
                         parent_hash: str, text_hash: str, text: str, status: str, reason: str | None,
                         metrics: dict[str, Any], diff: str, version: int | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO prompt_candidates (id, round_id, role, parent_version, parent_hash, "
                        "hash, text, status, reason, metrics_json, diff, version, created_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (candidate_id, round_id, role, parent_version, parent_hash, text_hash, text, status, reason,
                         json.dumps(metrics, default=str), diff, version, utcnow().isoformat()))

    def candidates(self, role: str = "judge") -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, round_id, parent_version, hash, status, reason, metrics_json, version, "
                               "created_at, diff FROM prompt_candidates WHERE role = ? ORDER BY created_at, rowid",
                               (role,))
        keys = ("id", "round_id", "parent_version", "hash", "status", "reason", "metrics", "version", "created_at",
                "diff")
        return [{**dict(zip(keys, r, strict=True)), "metrics": json.loads(r[6])} for r in rows]

    # --- cache (VerdictCache protocol) --------------------------------------------------------------------
    def get(self, key: str) -> Verdict | None:
        row = self.db.execute("SELECT verdict_json FROM cache WHERE key = ?", (key,)).fetchone()
        return Verdict.model_validate_json(row[0]) if row else None

    def put(self, key: str, verdict: Verdict) -> None:
        if verdict.status != "scored":
            return  # errors (and unscored replies) must be retried, never replayed
        self.db.execute("INSERT OR REPLACE INTO cache (key, verdict_json, created_at) VALUES (?,?,?)",
                        (key, verdict.model_dump_json(), utcnow().isoformat()))


_RUN_SELECT = ("SELECT r.id, r.created_at, r.input_path, r.output_path, r.status, r.n_inputs, r.n_input_errors, "
               "(SELECT COUNT(*) FROM results x WHERE x.run_id = r.id), r.config_json FROM runs r")


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    return RunInfo(id=row[0], created_at=row[1], input_path=row[2], output_path=row[3], status=row[4],
                   n_inputs=row[5], n_input_errors=row[6], n_results=row[7], config=json.loads(row[8]))
