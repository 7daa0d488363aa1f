"""One `overseer judge` job, without any terminal UI: prepare or resume a run, the output file, the concurrency
driver and the tally. Every sample goes through the judge graph with at most C calls in flight; each result is
committed to the run store, then appended to the output JSONL. A run can be resumed after Ctrl-C or kill -9.
The CLI wraps this with progress and a summary."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer.clauses import ClauseSelector
from overseer.config import Settings
from overseer.errors import ConfigError, InputError, RunError
from overseer.judging.betley import BetleyJudge, betley_prompt
from overseer.judging.graph import RunContext, graph
from overseer.judging.judge import Judge
from overseer.prompt_store import PromptStore
from overseer.providers import choose_backend, is_scripted, make_provider
from overseer.providers.base import GenerationParams
from overseer.providers.retry import RetryPolicy
from overseer.providers.scripted import Script
from overseer.samples_io import FieldMap, read_samples
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.types import Sample, SampleResult, Spec


@dataclass
class Tally:
    """Live counters for the progress line and the final summary."""

    total: int = 0
    done: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    errors: int = 0
    unscored: int = 0
    queued: int = 0
    retries: int = 0
    cached: int = 0
    listeners: list[Callable[[Tally], None]] = field(default_factory=list)

    def add(self, result: SampleResult) -> None:
        self.done += 1
        self.queued += bool(result.aggregate.review_reasons)
        for v in result.verdicts:
            self.input_tokens += v.provenance.usage.input_tokens
            self.output_tokens += v.provenance.usage.output_tokens
            self.cost_usd += 0.0 if v.provenance.cached else v.provenance.cost_usd
            self.errors += v.status == "error"
            self.unscored += v.status == "unscored"
            self.cached += v.provenance.cached
        for listener in self.listeners:
            listener(self)


def workspace_secret(workspace: Path) -> bytes:
    """Key for the per-sample delimiters; kept in the workspace so prompts (and cache keys) are stable."""
    path = workspace / "secret.key"
    if not path.exists():
        workspace.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def build_judges(settings: Settings, spec: Spec, store: RunStore | None,
                 tally: Tally | None = None, samples: Sequence[Sample] = ()) -> dict[str, Judge]:
    """One judge per backend spec in --judges (or the single chosen backend). `samples` are the ones about to be
    judged: a scripted backend is given their reference labels and metadata here, never in a call."""
    backends = settings.judges or [choose_backend(settings)]
    prompt = betley_prompt() if settings.rubric == "betley" else PromptStore(settings.workspace).active()
    judge_class = BetleyJudge if settings.rubric == "betley" else Judge
    key = workspace_secret(settings.workspace)
    params = GenerationParams(temperature=settings.temperature, max_tokens=settings.max_tokens)
    policy = RetryPolicy(max_attempts=settings.max_attempts)
    judges: dict[str, Judge] = {}
    for backend in backends:
        provider = make_provider(backend, settings, Script.from_samples(samples) if is_scripted(backend) else None)
        judge_id = f"{backend.split('@')[0]}@{provider.model}"
        if judge_id in judges:
            judge_id = f"{judge_id}#{len(judges) + 1}"
        on_retry = (lambda _exc: setattr(tally, "retries", tally.retries + 1)) if tally else None
        judges[judge_id] = judge_class(judge_id=judge_id, provider=provider, prompt=prompt, spec=spec,
                                 delimiter_key=key, params=params, policy=policy, prices=settings.prices,
                                 cache=store if settings.cache else None, on_retry=on_retry)
    return judges


class OutputFile:
    """The output JSONL. On open it repairs a torn last line (a crash mid-write) and learns which ids it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        self.repaired = False
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                with path.open("r+b") as f:
                    f.truncate(cut)
                self.repaired = True
                data = data[:cut]
            for line in data.splitlines():
                if line.strip():
                    self.ids.add(json.loads(line)["sample_id"])
        self.handle = path.open("a", encoding="utf-8")

    def write(self, result: SampleResult) -> None:
        if result.sample_id in self.ids:
            return
        self.handle.write(result.model_dump_json() + "\n")
        self.handle.flush()
        self.ids.add(result.sample_id)

    def close(self) -> None:
        self.handle.close()


def group_size(concurrency: int) -> int:
    """Samples per graph invocation. LangGraph costs ~2 ms of CPU per invocation; at high concurrency and short
    latencies that alone would saturate the event loop, so samples travel in small groups. Calls stay capped
    at `concurrency` by the judges' shared gate, and `concurrency` groups are in flight, so a group waiting for
    its slowest call never leaves a call slot idle."""
    return max(1, concurrency // 16)


async def judge_samples(ctx: RunContext, pending: list[str], concurrency: int,
                        on_result: Callable[[SampleResult], None]) -> None:
    """Run the graph over the pending samples with at most `concurrency` model calls in flight.
    A 401 stops everything (it would fail for every sample)."""
    gate = asyncio.Semaphore(concurrency)
    for judge in ctx.judges.values():
        judge.gate = gate
    size = group_size(concurrency)
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for start in range(0, len(pending), size):
        queue.put_nowait(pending[start:start + size])

    async def worker() -> None:
        while True:
            try:
                group = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await graph.ainvoke({"sample_ids": group}, context=ctx)
            for sample_id in group:
                on_result(ctx.results.pop(sample_id))

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(queue.qsize(), 1)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise


def file_sha256(path: Path) -> str:
    if path.is_dir():  # a directory of Inspect logs
        from overseer.inspect_logs import input_sha256

        return input_sha256(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sync_output(store: RunStore, run_id: str, output: OutputFile) -> int:
    """Append results the store committed but the output never got (a crash between the two). Returns count."""
    added = 0
    for result in store.results(run_id):
        if result.sample_id not in output.ids:
            output.write(result)
            added += 1
    return added


def check_resumable(store: RunStore, run_id: str, input_path: str | None) -> None:
    run = store.get_run(run_id)
    if input_path is not None and run.input_path not in (None, input_path):
        raise RunError(f"run {run_id} judged {run.input_path}, not {input_path}")
    if run.status == "finished":
        raise RunError(f"run {run_id} already finished; nothing to resume (see `overseer runs show {run_id}`)")


def pending_ids(samples: list[Sample], finished: set[str]) -> list[str]:
    return [s.id for s in samples if s.id not in finished]


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
        judges = build_judges(settings, spec, store, tally, samples) if pending else {}
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
                from overseer.optimize.learner import Learner

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
