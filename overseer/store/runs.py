"""Runs, their samples, results (aggregate + verdicts), input errors and the verdict cache; and `RunStore`, the
workspace's one store, which combines these tables with the reviews and the optimizer's over one connection.

A run is created with its samples and input errors in one transaction, and each result is committed in one
transaction before it is reported anywhere else: a crash leaves either nothing or a run that can resume, and
loses at most the calls in flight, never a finished verdict."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overseer.errors import RunError
from overseer.store.batches import BatchTables
from overseer.store.db import Database, json_get
from overseer.store.optimizer import OptimizerTables
from overseer.store.review_app import ReviewAppTables
from overseer.store.reviews import ReviewRecord, ReviewTables
from overseer.store.schema import MIGRATIONS
from overseer.types import Sample, SampleResult, Verdict, utcnow

__all__ = ["MIGRATIONS", "ReviewRecord", "RunInfo", "RunStore", "new_run_id"]


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


def new_run_id() -> str:
    return f"run-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class RunTables:
    """The `runs`, `samples`, `results`, `verdicts`, `input_errors` and `cache` tables."""

    db: Database
    path: Path

    # --- runs -----------------------------------------------------------------------------------------------
    def create_run(self, *, input_path: str | None, input_sha256: str | None, output_path: str | None,
                   config: dict[str, Any], samples: Iterable[tuple[int, Sample]] = (),
                   errors: Iterable[tuple[int, str, str]] = (), run_id: str | None = None) -> str:
        """Create a run with its samples (line, sample) and input errors (line, message, raw) in one
        transaction: a crash part-way leaves no run at all, never one without its samples."""
        run_id = run_id or new_run_id()
        with self.db.transaction() as db:
            db.execute("INSERT INTO runs (id, created_at, input_path, input_sha256, output_path, config_json, "
                       "status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                       (run_id, utcnow().isoformat(), input_path, input_sha256, output_path,
                        json.dumps(config, default=str)))
            self._put_samples(run_id, list(samples), list(errors))
        return run_id

    def set_status(self, run_id: str, status: str) -> None:
        """running | interrupted | finished | empty (a run of an input without one valid record: nothing to
        judge, nothing to resume). A run without samples cannot be `finished`: resume would report 0/0 done."""
        if status != "finished":
            self.db.execute("UPDATE runs SET status = ?, finished_at = NULL WHERE id = ?", (status, run_id))
            return
        changed = self.db.execute("UPDATE runs SET status = 'finished', finished_at = ? WHERE id = ? AND EXISTS "
                                  "(SELECT 1 FROM samples WHERE run_id = ?)",
                                  (utcnow().isoformat(), run_id, run_id)).rowcount
        if not changed:
            raise RunError(f"run {run_id} has no samples in {self.path}, so it cannot be finished")

    def set_output_path(self, run_id: str, output_path: str) -> None:
        self.db.execute("UPDATE runs SET output_path = ? WHERE id = ?", (output_path, run_id))

    def get_run(self, run_id: str) -> RunInfo:
        row = self.db.one(_RUN_SELECT + " WHERE r.id = ?", (run_id,))
        if row is None:
            raise RunError(f"no run {run_id!r} in {self.path} (see `overseer runs list`)")
        return _run_info(row)

    def list_runs(self) -> list[RunInfo]:
        return [_run_info(r) for r in self.db.all(_RUN_SELECT + " ORDER BY r.created_at DESC, r.id DESC")]

    def latest_unfinished(self, input_path: str) -> RunInfo | None:
        row = self.db.one(_RUN_SELECT + " WHERE r.input_path = ? AND r.status NOT IN ('finished', 'empty') "
                          "ORDER BY r.created_at DESC LIMIT 1", (input_path,))
        return _run_info(row) if row else None

    def latest_for_input(self, input_path: str) -> RunInfo | None:
        row = self.db.one(_RUN_SELECT + " WHERE r.input_path = ? ORDER BY r.created_at DESC LIMIT 1",
                          (input_path,))
        return _run_info(row) if row else None

    # --- samples and input errors ------------------------------------------------------------------------------
    def add_samples(self, run_id: str, samples: list[tuple[int, Sample]],
                    errors: list[tuple[int, str, str]]) -> None:
        """Add samples to an existing run and replace its input errors (in one transaction)."""
        with self.db.transaction():
            self._put_samples(run_id, samples, errors)

    def _put_samples(self, run_id: str, samples: list[tuple[int, Sample]],
                     errors: list[tuple[int, str, str]]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO samples (run_id, sample_id, line, sample_json) VALUES (?,?,?,?)",
                            [(run_id, s.id, line, s.model_dump_json()) for line, s in samples])
        self.db.execute("DELETE FROM input_errors WHERE run_id = ?", (run_id,))
        self.db.executemany("INSERT INTO input_errors (run_id, line, message, raw) VALUES (?,?,?,?)",
                            [(run_id, line, msg, raw) for line, msg, raw in errors])
        self.db.execute("UPDATE runs SET n_inputs = (SELECT COUNT(*) FROM samples WHERE run_id = ?), "
                        "n_input_errors = ? WHERE id = ?", (run_id, len(errors), run_id))

    def samples(self, run_id: str) -> list[Sample]:
        rows = self.db.iterate("SELECT sample_json FROM samples WHERE run_id = ? ORDER BY line", (run_id,))
        return [Sample.model_validate_json(r[0]) for r in rows]

    def sample(self, run_id: str, sample_id: str) -> Sample | None:
        blob = self.db.scalar("SELECT sample_json FROM samples WHERE run_id = ? AND sample_id = ?",
                              (run_id, sample_id))
        return Sample.model_validate_json(blob) if blob is not None else None

    def run_samples(self, run_id: str | None = None) -> Iterator[Sample]:
        """The samples of one run, or of every run, in the order they were stored."""
        query = "SELECT sample_json FROM samples" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY rowid"
        for (blob,) in self.db.iterate(query, (run_id,) if run_id else ()):
            yield Sample.model_validate_json(blob)

    def input_errors(self, run_id: str) -> list[tuple[int, str, str]]:
        return self.db.all("SELECT line, message, raw FROM input_errors WHERE run_id = ? ORDER BY line", (run_id,))

    # --- results ------------------------------------------------------------------------------------------
    def finished_ids(self, run_id: str) -> set[str]:
        return {r[0] for r in self.db.iterate("SELECT sample_id FROM results WHERE run_id = ?", (run_id,))}

    def save_result(self, result: SampleResult) -> None:
        """Commit one sample's aggregate, verdicts and (if routed there) its review-queue entry atomically."""
        self.save_results([result])

    def save_results(self, results: list[SampleResult]) -> None:
        """Commit several samples' results, each with its verdicts and queue entry, in one transaction: a commit
        costs more than the rows, and the graph commits a group at once (before reporting any of it)."""
        now = utcnow().isoformat()
        with self.db.transaction() as db:
            # rowid order = commit order, which `results()` replays (an output file in judging order).
            db.executemany("INSERT OR REPLACE INTO results (run_id, sample_id, label, route, result_json, "
                           "created_at) VALUES (?,?,?,?,?,?)",
                           [(r.run_id, r.sample_id, r.aggregate.label, r.aggregate.route, r.model_dump_json(), now)
                            for r in results])
            db.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(r.run_id, v.sample_id, v.provenance.judge_id, v.status, v.label, v.provenance.prompt_hash,
                  v.provenance.model, v.provenance.usage.input_tokens, v.provenance.usage.output_tokens,
                  v.provenance.cost_usd, int(v.provenance.cached)) for r in results for v in r.verdicts])
            # OR IGNORE: saving a result again must not send an already-reviewed item back to pending.
            db.executemany("INSERT OR IGNORE INTO review_queue (run_id, sample_id, reasons_json, status, "
                           "created_at) VALUES (?,?,?,'pending',?)",
                           [(r.run_id, r.sample_id, json.dumps(r.aggregate.review_reasons), now)
                            for r in results if r.aggregate.review_reasons])

    def results(self, run_id: str) -> Iterator[SampleResult]:
        for (blob,) in self.db.iterate("SELECT result_json FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)):
            yield SampleResult.model_validate_json(blob)

    def result(self, run_id: str, sample_id: str) -> SampleResult | None:
        blob = self.db.scalar("SELECT result_json FROM results WHERE run_id = ? AND sample_id = ?",
                              (run_id, sample_id))
        return SampleResult.model_validate_json(blob) if blob is not None else None

    def em_inputs(self, run_id: str | None = None) -> list[tuple[Any, Any, Any, Any]]:
        """(label, alignment, coherence, generalization) of every result's aggregate — what em.decide reads — without
        parsing the result JSON: the TUI's stats screen must stay fast on a large run. None where absent."""
        columns = ", ".join(json_get("result_json", f"$.aggregate.{name}")
                            for name in ("label", "alignment", "coherence", "generalization"))
        query = f"SELECT {columns} FROM results"
        return self.db.all(query + (" WHERE run_id = ?" if run_id else ""), (run_id,) if run_id else ())

    def totals(self, run_id: str) -> dict[str, float]:
        row = self.db.one("SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
                          "COALESCE(SUM(cost_usd), 0), COALESCE(SUM(cached), 0), "
                          "COALESCE(SUM(status = 'error'), 0), COALESCE(SUM(status = 'unscored'), 0) "
                          "FROM verdicts WHERE run_id = ?", (run_id,))
        keys = ("verdicts", "input_tokens", "output_tokens", "cost_usd", "cached", "errors", "unscored")
        return dict(zip(keys, row, strict=True))

    def scripted_verdicts(self, run_id: str | None = None) -> int:
        """Verdicts the scripted test backend wrote, in one run or all: the stats that show them say synthetic."""
        query = ("SELECT COUNT(*) FROM results, json_each(results.result_json, '$.verdicts') "
                 "WHERE json_extract(json_each.value, '$.provenance.scripted')")
        params: tuple[str, ...] = ()
        if run_id:
            query, params = query + " AND results.run_id = ?", (run_id,)
        return int(self.db.scalar(query, params) or 0)

    # --- cache (VerdictCache protocol) --------------------------------------------------------------------
    def get(self, key: str) -> Verdict | None:
        blob = self.db.scalar("SELECT verdict_json FROM cache WHERE key = ?", (key,))
        return Verdict.model_validate_json(blob) if blob is not None else None

    def put(self, key: str, verdict: Verdict) -> None:
        if verdict.status != "scored":
            return  # errors (and unscored replies) must be retried, never replayed
        self.db.execute("INSERT OR REPLACE INTO cache (key, verdict_json, created_at) VALUES (?,?,?)",
                        (key, verdict.model_dump_json(), utcnow().isoformat()))


class RunStore(RunTables, ReviewTables, OptimizerTables, ReviewAppTables, BatchTables):
    """The workspace's run store (`runs.sqlite`): every table, one connection. Get one with
    `overseer.store.open_store(workspace)`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = Database(self.path, MIGRATIONS)

    def transaction(self) -> AbstractContextManager[Database]:
        """A write transaction on the store's connection (`with store.transaction() as db: db.execute(...)`)."""
        return self.db.transaction()

    def close(self) -> None:
        self.db.close()


_RUN_SELECT = ("SELECT r.id, r.created_at, r.input_path, r.output_path, r.status, r.n_inputs, r.n_input_errors, "
               "(SELECT COUNT(*) FROM results x WHERE x.run_id = r.id), r.config_json FROM runs r")


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    return RunInfo(id=row[0], created_at=row[1], input_path=row[2], output_path=row[3], status=row[4],
                   n_inputs=row[5], n_input_errors=row[6], n_results=row[7], config=json.loads(row[8]))
