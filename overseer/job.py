"""One `overseer judge` job, without any terminal UI: load or resume a run, judge what is pending, keep the
run store and the output file in step. The CLI wraps this with progress and a summary."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer.batch import (
    OutputFile,
    Tally,
    build_judges,
    check_resumable,
    file_sha256,
    judge_samples,
    pending_ids,
    sync_output,
)
from overseer.clauses import ClauseSelector
from overseer.config import Settings
from overseer.errors import ConfigError, InputError, RunError
from overseer.graph import RunContext
from overseer.runs import RunStore
from overseer.samples_io import FieldMap, read_samples
from overseer.spec import load_spec
from overseer.types import SampleResult


@dataclass
class JobRequest:
    input_path: Path
    fields: FieldMap
    output: Path | None = None
    spec: str | None = None
    resume: str | None = None  # a run id, or "latest" for the newest unfinished run of this input
    limit: int | None = None
    skip_invalid: bool = False
    use_memory: bool = True  # retrieve reviewed edge cases and let the fast judge vote, if a memory exists
    cascade: float | None = None  # let the memory decide alone when its confidence reaches this
    learn: bool = False  # run an improvement round every settings.learn_every labelled samples


@dataclass
class JobOutcome:
    run_id: str
    output: Path
    errors_file: Path | None
    tally: Tally
    resumed: bool = False
    repaired_output: bool = False
    recovered: int = 0  # results the store had but the output missed (crash between the two)
    input_errors: int = 0
    notes: list[str] = field(default_factory=list)


def open_store(settings: Settings) -> RunStore:
    return RunStore(settings.workspace / "runs.sqlite")


def prepare(request: JobRequest, settings: Settings, store: RunStore) -> tuple[str, JobOutcome, list]:
    """Create the run (or find the one to resume) and record its samples and input errors."""
    input_key = str(request.input_path.resolve())
    if request.resume:
        run_id = request.resume
        if run_id == "latest":
            found = store.latest_unfinished(input_key)
            if found is None:
                raise RunError(f"no unfinished run of {request.input_path} to resume (see `overseer runs list`)")
            run_id = found.id
        check_resumable(store, run_id, input_key)
        run = store.get_run(run_id)
        output = Path(run.output_path) if run.output_path else default_output(settings, run_id)
        outcome = JobOutcome(run_id, output, None, Tally(), resumed=True, input_errors=run.n_input_errors)
        if run.config.get("input_sha256") not in (None, file_sha256(request.input_path)):
            outcome.notes.append("the input file changed since the run started; resuming its recorded samples")
        return run_id, outcome, store.samples(run_id)

    loaded = read_samples(request.input_path, request.fields, limit=request.limit)
    if loaded.errors and not request.skip_invalid:
        shown = "\n".join(f"  {err}" for _, err, _ in loaded.errors[:20])
        more = f"\n  ... and {len(loaded.errors) - 20} more" if len(loaded.errors) > 20 else ""
        raise InputError(f"{len(loaded.errors)} invalid record(s); fix them or pass --skip-invalid to judge "
                         f"the rest and write these to an errors file:\n{shown}{more}")
    input_sha256 = file_sha256(request.input_path)
    config = {"input_sha256": input_sha256, "fields": request.fields.__dict__,
              "spec": request.spec, "backend": settings.backend, "model": settings.model,
              "judges": settings.judges, "rubric": settings.rubric, "limit": request.limit}
    run_id = store.create_run(input_path=input_key, input_sha256=input_sha256, output_path=None,
                              config=config)
    output = request.output or default_output(settings, run_id)
    store.db.execute("UPDATE runs SET output_path = ? WHERE id = ?", (str(output.resolve()), run_id))
    errors = [(line, str(err), raw) for line, err, raw in loaded.errors]
    store.add_samples(run_id, loaded.samples, errors)
    errors_file = None
    if errors:
        errors_file = output.with_suffix(".errors.jsonl")
        with errors_file.open("w", encoding="utf-8") as f:
            for line, message, raw in errors:
                f.write(json.dumps({"line": line, "error": message, "raw": raw}) + "\n")
    outcome = JobOutcome(run_id, output, errors_file, Tally(), input_errors=len(errors))
    if output.exists() and output.stat().st_size:
        # A new run writes a new file: appending would mix two runs, and OutputFile would skip every id the old
        # run had already written. Nothing is lost: every run's results stay in the run store.
        output.write_bytes(b"")
        outcome.notes.append(f"{output} held an earlier run's results; replaced (earlier runs stay in the run "
                             "store: `overseer runs list`, `overseer runs export RUN`)")
    return run_id, outcome, [s for _, s in loaded.samples]


def open_memory(settings: Settings, request: JobRequest) -> Any:
    """The workspace's edge-case memory for this run (read-only), or None when there is none to use."""
    root = settings.workspace / "memory"
    if not request.use_memory or not (root / "meta.json").exists():
        if request.cascade is not None:
            raise ConfigError(f"--cascade needs an edge-case memory, and {root} has none: seed one first "
                              "(`overseer seed FILE --reviewed`)")
        return None
    from overseer.memory.judge_memory import JudgeMemory
    from overseer.memory.store import EdgeCaseStore

    return JudgeMemory(EdgeCaseStore(root), cascade_tau=request.cascade)


def default_output(settings: Settings, run_id: str) -> Path:
    return settings.workspace / "outputs" / f"{run_id}.jsonl"


def run_job(request: JobRequest, settings: Settings, *,
            on_start: Callable[[JobOutcome], None] | None = None,
            on_result: Callable[[SampleResult], None] | None = None,
            on_event: Callable[[str], None] | None = None) -> JobOutcome:
    store = open_store(settings)
    try:
        run_id, outcome, samples = prepare(request, settings, store)
        spec = load_spec(request.spec or store.get_run(run_id).config.get("spec"))
        output = OutputFile(outcome.output)
        outcome.repaired_output = output.repaired
        outcome.recovered = sync_output(store, run_id, output)
        finished = store.finished_ids(run_id)
        pending = pending_ids(samples, finished)
        tally = outcome.tally
        tally.total, tally.done = len(samples), len(samples) - len(pending)
        judges = build_judges(settings, spec, store, tally) if pending else {}
        ctx = RunContext(run_id=run_id, samples={s.id: s for s in samples}, judges=judges,
                         selector=ClauseSelector(spec, settings.max_clauses), store=store,
                         memory=open_memory(settings, request) if pending else None,
                         low_confidence=settings.low_confidence, threshold_margin=settings.threshold_margin)
        if on_start:
            on_start(outcome)

        learner: list[Any] = []  # created inside the event loop, which it schedules rounds on

        def record(result: SampleResult) -> None:
            output.write(result)
            tally.add(result)
            if learner:
                learner[0].note(ctx.samples[result.sample_id].reference_label is not None)
            if on_result:
                on_result(result)

        async def judge_all() -> None:
            if request.learn:
                from overseer.improve import Learner

                learner.append(Learner(settings, store, spec, run_id, judges, on_event=on_event))
            await _judge_then_close(ctx, pending, settings.concurrency, record, learner[0] if learner else None)

        store.set_status(run_id, "running")
        try:
            if pending:
                asyncio.run(judge_all())
        except BaseException:
            store.set_status(run_id, "interrupted")
            raise
        finally:
            output.close()
        store.set_status(run_id, "finished")
        return outcome
    finally:
        store.close()


async def _judge_then_close(ctx: RunContext, pending: list[str], concurrency: int,
                            record: Callable[[SampleResult], None], learner: Any = None) -> None:
    try:
        await judge_samples(ctx, pending, concurrency, record)
        if learner is not None:
            await learner.finish()  # let a round that is under way finish and be recorded
    finally:
        for judge in ctx.judges.values():
            await judge.provider.aclose()
