"""One `overseer judge` job, without any terminal UI: prepare or resume a run, the output file, the concurrency
driver and the tally. Every sample goes through the judge graph with at most C calls in flight; each result is
committed to the run store, then appended to the output JSONL. A run can be resumed after Ctrl-C, SIGTERM or
kill -9, with the settings it recorded when it started (run_config.py). The CLI wraps this with progress and a
summary."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overseer import run_config
from overseer.clauses import ClauseSelector
from overseer.config import Settings
from overseer.errors import ConfigError, InputError, RunError
from overseer.judging.betley import BetleyJudge, betley_prompt
from overseer.judging.gate import CallGate
from overseer.judging.graph import RunContext, graph
from overseer.judging.judge import Judge
from overseer.memory import memory_exists
from overseer.prompt_store import PromptStore
from overseer.providers import choose_backend, is_scripted, make_provider
from overseer.providers.base import GenerationParams
from overseer.providers.retry import RetryPolicy
from overseer.providers.scripted import Script
from overseer.run_config import file_sha256, input_record
from overseer.samples_io import FieldMap, read_inputs
from overseer.spec import load_spec
from overseer.store import open_store as open_workspace_store
from overseer.store.runs import RunStore, new_run_id
from overseer.store.secret import workspace_secret
from overseer.types import PromptVersion, Sample, SampleResult, Spec


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


def build_judges(settings: Settings, spec: Spec, store: RunStore | None,
                 tally: Tally | None = None, samples: Sequence[Sample] = (),
                 prompt: PromptVersion | None = None) -> dict[str, Judge]:
    """One judge per backend spec in --judges (or the single chosen backend), all with `prompt` (default: the
    rubric's current one). `samples` are the ones about to be judged: a scripted backend is given their reference
    labels and metadata here, never in a call."""
    backends = settings.judges or [choose_backend(settings)]
    prompt = prompt or judge_prompt(settings)
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
                                 cache=store if settings.cache else None, on_retry=on_retry,
                                 max_response_chars=settings.max_response_chars)
    return judges


class OutputFile:
    """The output JSONL: a copy of the run's results, whose source of truth is the run store. Open, it holds an
    exclusive flock, so a second live run (or resume) writing the same file is refused; the kernel releases the
    lock when the process exits, crash included. `fresh` empties the file (a new run); otherwise a torn last line
    (a crash mid-write) is cut, and a damaged line anywhere else is reported in `damaged` for `rebuild`."""

    def __init__(self, path: Path, run_id: str, *, fresh: bool) -> None:
        self.path, self.run_id = path, run_id
        self.ids: set[str] = set()
        self.repaired = False  # a torn last line was cut
        self.replaced = False  # a fresh run emptied a file that held results
        self.damaged: str | None = None  # "line N: why", the first line that is not one of this run's results
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("a+b")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise RunError(f"{path} is being written by another overseer run; wait for it to finish (or stop it), "
                           "or pass another -o file") from None
        if fresh:
            self.replaced = self.handle.seek(0, os.SEEK_END) > 0
            self.handle.truncate(0)
        else:
            self._load()

    def _load(self) -> None:
        self.handle.seek(0)
        data = self.handle.read()
        if data and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]
            self.handle.truncate(len(data))
            self.repaired = True
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            problem = self._problem(line)
            if problem is not None:
                self.damaged = self.damaged or f"line {number}: {problem}"
                continue
            self.ids.add(json.loads(line)["sample_id"])

    def _problem(self, line: bytes) -> str | None:
        try:
            record = json.loads(line)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            return f"not JSON ({exc})"
        if not isinstance(record, dict) or not isinstance(record.get("sample_id"), str):
            return "not a result (no sample_id)"
        if record.get("run_id") != self.run_id:
            return f"a result of another run ({record.get('run_id')!r})"
        return None

    def rebuild(self, results: Iterable[SampleResult]) -> int:
        """Rewrite the file from the run store (in place: the lock stays on this inode). Returns the line count."""
        self.handle.truncate(0)
        self.ids.clear()
        for result in results:
            self.write(result)
        self.damaged = None
        return len(self.ids)

    def write(self, result: SampleResult) -> None:
        if result.sample_id in self.ids:
            return
        self.handle.write(result.model_dump_json().encode("utf-8") + b"\n")
        self.handle.flush()
        self.ids.add(result.sample_id)

    def close(self) -> None:
        self.handle.close()  # releases the lock


def group_size(concurrency: int) -> int:
    """Samples per graph invocation. LangGraph costs ~1–2 ms of CPU per invocation (five nodes, their tasks and
    callbacks); at high concurrency and short latencies that alone would saturate the event loop, so samples
    travel in groups (32 at C=256: ~0.05 ms a sample). Not larger: a group's calls are prepared, and its results
    aggregated and committed, in one step each, and at 64 those steps delayed every call due meanwhile (at
    latency 0.2 calls held their slot 251 ms instead of 225; bench/throughput.py at C=256). Calls stay capped
    at `concurrency` by the judges' shared gate, and `concurrency` groups are in flight, so a group waiting for
    its slowest call never leaves a call slot idle; a finished verdict waiting for its group is already in the
    verdict cache."""
    return max(1, concurrency // 8)


@contextlib.contextmanager
def _rarer_gc() -> Iterator[None]:
    """Collect garbage less often while judging. Thousands of calls in flight keep their coroutines, messages and
    verdicts alive, and every cyclic collection walks them: with Python's default thresholds that was ~0.25 ms of
    CPU per sample at C=256 (bench/throughput.py, 0.97 → 0.72 ms). Refcounting still frees almost everything at
    once; only cycles wait longer. The caller's thresholds come back afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(20_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


async def judge_samples(ctx: RunContext, pending: list[str], concurrency: int,
                        on_result: Callable[[SampleResult], None]) -> None:
    """Run the graph over the pending samples with at most `concurrency` model calls in flight; each result is
    reported once the graph has committed it. A 401 stops everything (it would fail for every sample)."""
    gate = CallGate(concurrency)
    for judge in ctx.judges.values():
        judge.gate = gate
    size = group_size(concurrency)
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for start in range(0, len(pending), size):
        queue.put_nowait(pending[start:start + size])

    async def worker() -> None:
        # The first groups start one per loop iteration, not all in the first one: C groups preparing their
        # calls at once (8,192 samples at C=256) held the loop ~1.2 s while the first calls' replies waited.
        await gate.next_turn()
        while True:
            try:
                group = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            out = await graph.ainvoke({"sample_ids": group}, context=ctx)
            by_id = {r.sample_id: r for r in out["results"]}
            for sample_id in group:  # in input order: record and queue_review ran side by side
                on_result(by_id[sample_id])

    with _rarer_gc(), ctx.store.db.background_checkpoints():
        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, max(queue.qsize(), 1)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise


def sync_output(store: RunStore, run_id: str, output: OutputFile) -> int:
    """Append results the store committed but the output never got (a crash or a Ctrl-C between the two, or a
    resume into another file), in commit order. Returns the count."""
    if not store.finished_ids(run_id) - output.ids:
        return 0  # the common case, without parsing every result
    added = 0
    for result in store.results(run_id):
        if result.sample_id not in output.ids:
            output.write(result)
            added += 1
    return added


@dataclass
class JobRequest:
    input_path: Path  # the first input; `inputs` lists them all when there are several
    fields: FieldMap
    output: Path | None = None
    spec: str | None = None
    resume: str | None = None  # a run id, or "latest" for the newest unfinished run of this input
    limit: int | None = None
    skip_invalid: bool = False
    use_memory: bool = True  # retrieve reviewed edge cases and let the fast judge vote, if a memory exists
    cascade: float | str | None = None  # let the memory decide alone at this confidence; "auto": as calibrated
    learn: bool = False  # run an improvement round every settings.learn_every labelled samples
    batch: bool = False  # judge through the provider's batch API (overseer/batch): submit, record, return
    retry: str | None = None  # a batch run's expired/errored calls: "batch" (a new batch) or "interactive"
    submit: bool = True  # False: a batch run only polls and ingests (`runs status` of a cancelled run)
    # The judge flags typed on this command (backend, model, base_url, judges, rubric), as opposed to env and
    # config.toml: a resume refuses those that contradict the run's recorded settings.
    flags: dict[str, Any] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)

    def input_paths(self) -> list[Path]:
        return self.inputs or [self.input_path]


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
    memory_notes: list[str] = field(default_factory=list)  # after the run: what the memory cascade decided
    batch: Any = None  # overseer.batch.driver.BatchProgress, for a batch run


@dataclass
class Prepared:
    """What a job judges, and with what: a new run's or a resumed run's recorded settings."""

    run_id: str
    outcome: JobOutcome
    samples: list[Sample]
    output: OutputFile
    settings: Settings
    spec: Spec
    judges: dict[str, Judge]
    learn: bool


def open_store(settings: Settings) -> RunStore:
    return open_workspace_store(settings.workspace)


def default_output(settings: Settings, run_id: str) -> Path:
    return settings.workspace / "outputs" / f"{run_id}.jsonl"


def prepare(request: JobRequest, settings: Settings, store: RunStore, tally: Tally,
            on_created: Callable[[str], None] = lambda _run_id: None) -> Prepared:
    """Create the run (`on_created` hears its id at once), or find the one to resume, and open its output file
    (locked)."""
    if request.resume:
        return _resume(request, settings, store, tally)
    loaded = read_inputs(request.input_paths(), request.fields, limit=request.limit)
    if loaded.errors and not request.skip_invalid:
        shown = "\n".join(f"  {err}" for _, err, _ in loaded.errors[:20])
        more = f"\n  ... and {len(loaded.errors) - 20} more" if len(loaded.errors) > 20 else ""
        raise InputError(f"{len(loaded.errors)} invalid record(s); fix them or pass --skip-invalid to judge "
                         f"the rest and write these to an errors file:\n{shown}{more}")
    spec = load_spec(request.spec)
    backends = settings.judges or [choose_backend(settings)]
    settings = settings.model_copy(update={"judges": backends})
    prompt = judge_prompt(settings)
    samples = [s for _, s in loaded.samples]
    judges = build_judges(settings, spec, store, tally, samples, prompt=prompt)
    inputs = [input_record(path) for path in request.input_paths()]
    config = run_config.record(inputs=inputs, fields=request.fields.__dict__, limit=request.limit,
                               settings=settings, backends=backends, judges=judges, spec=spec, prompt=prompt,
                               learn=request.learn)
    if request.batch:
        if request.learn:
            raise ConfigError("--batch and --learn do not go together: a batch run's verdicts arrive hours later")
        from overseer.batch.clients import check_batchable

        for judge in judges.values():
            check_batchable(judge.provider)  # before the run exists: a refused run leaves nothing to resume
        config["batch"] = {"retry": request.retry or "batch"}
    # A given -o is locked before the run exists, so a refused second writer leaves no run behind.
    output_file = OutputFile(request.output, "", fresh=True) if request.output else None
    input_key, input_sha256 = inputs[0]["path"], inputs[0]["sha256"]
    run_id = new_run_id()
    output = request.output or default_output(settings, run_id)
    errors = [(line, str(err), raw) for line, err, raw in loaded.errors]
    # The run, its samples and its input errors are one transaction: a crash leaves all of them or none.
    store.create_run(run_id=run_id, input_path=input_key, input_sha256=input_sha256,
                     output_path=str(output.resolve()), config=config, samples=loaded.samples, errors=errors)
    on_created(run_id)
    if output_file is None:
        output_file = OutputFile(output, run_id, fresh=True)
    output_file.run_id = run_id
    errors_file = None
    if errors:
        errors_file = output.with_suffix(".errors.jsonl")
        errors_file.parent.mkdir(parents=True, exist_ok=True)  # before OutputFile makes it: a new workspace
        with errors_file.open("w", encoding="utf-8") as f:
            for line, message, raw in errors:
                f.write(json.dumps({"line": line, "error": message, "raw": raw}) + "\n")
    outcome = JobOutcome(run_id, output, errors_file, tally, input_errors=len(errors))
    if output_file.replaced:
        # A new run writes a new file: appending would mix two runs, and OutputFile would skip every id the old
        # run had already written. Nothing is lost: every run's results stay in the run store.
        outcome.notes.append(f"{output} held an earlier run's results; replaced (earlier runs stay in the run "
                             "store: `overseer runs list`, `overseer runs export RUN`)")
    return Prepared(run_id, outcome, [s for _, s in loaded.samples], output_file, settings, spec, judges,
                    request.learn)


def _resume(request: JobRequest, settings: Settings, store: RunStore, tally: Tally) -> Prepared:
    asked = [str(path.resolve()) for path in request.input_paths()]
    run_id = request.resume or ""
    if run_id == "latest":
        # The store keys a run by its first input; the inputs may be given in any order.
        candidates = [run for path in dict.fromkeys(asked) if (run := store.latest_unfinished(path)) is not None]
        found = max(candidates, key=lambda run: run.created_at, default=None)
        if found is None:
            raise RunError(f"no unfinished run of {', '.join(map(str, request.input_paths()))} to resume (see "
                           "`overseer runs list`)")
        run_id = found.id
    run = store.get_run(run_id)
    if run.status == "finished":
        raise RunError(f"run {run_id} already finished; nothing to resume (see `overseer runs show {run_id}`)")
    if run.n_inputs == 0:
        raise RunError(f"run {run_id} has no samples (it was interrupted while being created); judge the input "
                       "again without --resume")
    inputs = run_config.recorded_inputs(run.config, run.input_path, None)
    if sorted(asked) != sorted(str(i["path"]) for i in inputs):
        raise RunError(f"run {run_id} judged {', '.join(str(i['path']) for i in inputs)}, not {', '.join(asked)}")
    notes = []
    changed = [i["path"] for i in inputs if i["sha256"] is not None and Path(i["path"]).exists()
               and i["sha256"] != file_sha256(Path(i["path"]))]
    if changed:
        what = "the input file" if len(inputs) == 1 else ", ".join(map(str, changed))
        notes.append(f"{what} changed since the run started; resuming its recorded samples")
    recorded = Path(run.output_path) if run.output_path else default_output(settings, run_id)
    output = request.output or recorded
    if output.resolve() != recorded.resolve():
        notes.append(f"writing to {output} as asked (the run started with {recorded}); it gets every result of "
                     "the run, from the run store")
    if run_config.legacy(run.config):
        # Recorded before runs kept their judges: judge with this command's flags, as resume always did then.
        notes.append(f"run {run_id} predates recorded judge settings; resuming with this command's flags")
        spec, learn = load_spec(request.spec or run.config.get("spec")), request.learn
        prompt = judge_prompt(settings)
    else:
        settings, spec, recorded_prompt, learn = run_config.resume_settings(
            run_id, run.config, settings, request.flags, request.spec, request.learn)
        prompt = recorded_prompt or judge_prompt(settings)
    output_file = OutputFile(output, run_id, fresh=False)  # before anything is judged: refuses a live writer
    outcome = JobOutcome(run_id, output, None, tally, resumed=True, input_errors=run.n_input_errors, notes=notes)
    samples = store.samples(run_id)
    pending = len(samples) > len(store.finished_ids(run_id))
    judges = build_judges(settings, spec, store, tally, samples, prompt=prompt) if pending else {}
    if pending and not run_config.legacy(run.config):
        run_config.check_judges(run_id, run.config, judges)
    return Prepared(run_id, outcome, samples, output_file, settings, spec, judges, learn)


def batch_retry(request: JobRequest, config: dict[str, Any], run_id: str) -> Any:
    """None for an interactive run; for a batch run (recorded at its start) how to retry: "batch" or
    "interactive" (this command's --retry, else the recorded one)."""
    recorded = config.get("batch")
    if recorded is None:
        if request.batch:
            raise RunError(f"run {run_id} is judged interactively; resume it without --batch")
        return None
    return request.retry or recorded["retry"]


def judge_prompt(settings: Settings) -> PromptVersion:
    return betley_prompt() if settings.rubric == "betley" else PromptStore(settings.workspace).active()


def open_memory(settings: Settings, request: JobRequest) -> Any:
    """The workspace's edge-case memory for this run (read-only), or None when there is none to use."""
    root = settings.workspace / "memory"
    if not request.use_memory or not memory_exists(root):
        if request.cascade is not None:
            raise ConfigError(f"--cascade needs an edge-case memory, and {root} has none: seed one first "
                              "(`overseer seed FILE --reviewed`)")
        return None
    from overseer.memory.judge_memory import JudgeMemory
    from overseer.memory.store import EdgeCaseStore

    return JudgeMemory.open(EdgeCaseStore(root), request.cascade)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run ends `interrupted` and resumable."""

    signum = signal.SIGTERM


class _OnSigterm:
    """While a job runs, SIGTERM cancels the event loop's main task the way asyncio's own Ctrl-C handling does
    (cancelling, not raising inside the loop, lets every `finally` run); outside the loop it raises Terminated."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.received = False

    def __call__(self, _signum: int, _frame: object) -> None:
        first, self.received = not self.received, True
        if first and self.task is not None and not self.task.done():
            self.task.cancel()
            self.task.get_loop().call_soon_threadsafe(lambda: None)  # wake the loop if it is waiting
            return
        raise Terminated()

    def __enter__(self) -> _OnSigterm:
        self.previous = None
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self.previous = signal.signal(signal.SIGTERM, self)
        return self

    def __exit__(self, *_: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def run_job(request: JobRequest, settings: Settings, *,
            on_start: Callable[[JobOutcome], None] | None = None,
            on_result: Callable[[SampleResult], None] | None = None,
            on_event: Callable[[str], None] | None = None) -> JobOutcome:
    store = open_store(settings)
    with _OnSigterm() as sigterm:
        try:
            return _run(request, settings, store, sigterm, on_start, on_result, on_event)
        finally:
            store.close()


def _run(request: JobRequest, settings: Settings, store: RunStore, sigterm: _OnSigterm,
         on_start: Callable[[JobOutcome], None] | None, on_result: Callable[[SampleResult], None] | None,
         on_event: Callable[[str], None] | None) -> JobOutcome:
    created: list[str] = []
    try:
        job = prepare(request, settings, store, Tally(), on_created=created.append)
    except BaseException:
        if created:  # stopped after the run was created: it is as resumable as any interrupted run
            store.set_status(created[0], "interrupted")
        raise
    run_id, outcome, output, tally = job.run_id, job.outcome, job.output, job.outcome.tally
    try:
        if damaged := output.damaged:
            rebuilt = output.rebuild(store.results(run_id))
            outcome.notes.append(f"{output.path} {damaged}; rebuilt it from the run store (the source of "
                                 f"truth): {rebuilt} result(s)")
        outcome.repaired_output = output.repaired
        outcome.recovered = sync_output(store, run_id, output)
        finished = store.finished_ids(run_id)  # once: in the condition it was one query per sample
        pending = [s.id for s in job.samples if s.id not in finished]
        tally.total, tally.done = len(job.samples), len(job.samples) - len(pending)
        ctx = RunContext(run_id=run_id, samples={s.id: s for s in job.samples}, judges=job.judges,
                         selector=ClauseSelector(job.spec, job.settings.max_clauses), store=store,
                         memory=open_memory(job.settings, request) if pending else None,
                         low_confidence=job.settings.low_confidence, threshold_margin=job.settings.threshold_margin)
        if on_start:
            on_start(outcome)

        def record(result: SampleResult) -> None:
            output.write(result)
            tally.add(result)
            if learner is not None:
                learner.note(ctx.samples[result.sample_id].reference_label is not None)
            if on_result:
                on_result(result)

        learner: Any = None  # created inside the event loop, which it schedules rounds on

        async def judge_all() -> None:
            nonlocal learner
            sigterm.task = asyncio.current_task()
            if job.learn:
                from overseer.optimize.learner import Learner

                learner = Learner(job.settings, store, job.spec, run_id, job.judges, on_event=on_event)
            try:
                await judge_samples(ctx, pending, job.settings.concurrency, record)
                if learner is not None:
                    await learner.finish()  # let a round that is under way finish and be recorded
            finally:
                sigterm.task = None
                for judge in ctx.judges.values():
                    await judge.provider.aclose()

        if (batch := batch_retry(request, store.get_run(run_id).config, run_id)) is not None:
            from overseer.batch.driver import advance

            outcome.batch = advance(ctx, pending, max_attempts=job.settings.max_attempts, retry=batch,
                                    submit=request.submit, on_result=record, on_event=on_event or (lambda _m: None))
            store.set_status(run_id, outcome.batch.state)
            return outcome
        store.set_status(run_id, "running")
        if pending:
            asyncio.run(judge_all())
            if ctx.memory is not None:
                outcome.memory_notes = ctx.memory.run_notes([ctx.samples[i] for i in pending])
    except BaseException as exc:  # Ctrl-C, SIGTERM, a 401, a bug: whatever stopped it, the run can be resumed
        store.set_status(run_id, "interrupted")
        # A stop can land between a group's commit and its report: the output still gets every committed result.
        with contextlib.suppress(Exception):  # a store that just failed is not made to fail a second time here
            outcome.recovered += sync_output(store, run_id, output)
        if sigterm.received and not isinstance(exc, Terminated):
            raise Terminated() from None  # the loop's main task was cancelled by SIGTERM
        raise
    finally:
        output.close()
    store.set_status(run_id, "finished" if job.samples else "empty")  # the store never finishes an empty run
    return outcome
