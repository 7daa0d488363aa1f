"""Headless batch judging: every sample goes through the judge graph with at most C in flight; each result is
committed to the run store, then appended to the output JSONL. A run can be resumed after Ctrl-C or kill -9."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from overseer.betley import BetleyJudge, betley_prompt
from overseer.config import Settings
from overseer.errors import RunError
from overseer.graph import RunContext, graph
from overseer.judge import Judge
from overseer.prompt_store import PromptStore
from overseer.providers import choose_backend, make_provider
from overseer.providers.base import GenerationParams
from overseer.providers.retry import RetryPolicy
from overseer.runs import RunStore
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
                 tally: Tally | None = None) -> dict[str, Judge]:
    """One judge per backend spec in --judges (or the single chosen backend)."""
    backends = settings.judges or [choose_backend(settings)]
    prompt = betley_prompt() if settings.rubric == "betley" else PromptStore(settings.workspace).active()
    judge_class = BetleyJudge if settings.rubric == "betley" else Judge
    key = workspace_secret(settings.workspace)
    params = GenerationParams(temperature=settings.temperature, max_tokens=settings.max_tokens)
    policy = RetryPolicy(max_attempts=settings.max_attempts)
    judges: dict[str, Judge] = {}
    for backend in backends:
        provider = make_provider(backend, settings)
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
