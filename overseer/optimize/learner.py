"""Wiring for the optimizer: `overseer improve`, and continuous learning during `overseer judge --learn`, where
every K new labelled samples start one improvement round in the background and, if it is accepted, the next
samples are judged with the new prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from overseer.config import Settings
from overseer.errors import ConfigError
from overseer.memory import memory_exists
from overseer.optimize.optimizer import Budget, Gate, Optimizer, RoundOutcome
from overseer.optimize.pool import (
    Example,
    choose_labels,
    examples_from_memory,
    examples_from_reviews,
    examples_from_runs,
    frozen_pool,
    shipped_golden,
)
from overseer.optimize.serving import EDGE_CASES, Serving
from overseer.prompt_store import PromptStore
from overseer.providers import choose_backend, is_scripted, make_provider
from overseer.providers.base import GenerationParams
from overseer.providers.retry import RetryPolicy
from overseer.providers.scripted import Script, ScriptedProvider
from overseer.store.runs import RunStore
from overseer.store.secret import workspace_secret
from overseer.types import Spec


def check_learning(settings: Settings) -> None:
    """Refuse, before anything is judged or spent, a learning setup that cannot work: the Betley rubric, or a
    reflection backend that cannot write a prompt. `judge --learn` calls this before its run starts."""
    if settings.rubric == "betley":
        raise ConfigError("--learn rewrites the spec rubric's judging prompt; the Betley rubric is the paper's fixed "
                          "prompt (a rewrite would no longer measure what Betley et al. measure): drop --learn, or "
                          "judge with --rubric spec")
    judge_backend = (settings.judges or [choose_backend(settings)])[0]
    reflection = settings.reflection_backend or judge_backend
    _check_reflection(reflection, given=settings.reflection_backend is not None)


def _check_reflection(spec: str, *, given: bool) -> None:
    """Judged from the backend spec alone: building the provider could load a model or call a server."""
    why = None
    name = spec.partition("@")[0].partition(":")[0]
    if name == "local":
        why = ("the embedded local model (SmolLM2-135M) cannot rewrite a judging prompt: its labels are not "
               "trustworthy, and a whole prompt as JSON overflows llama.cpp's grammar limit")
    elif is_scripted(spec) and ScriptedProvider.from_spec(spec.partition("@")[0].partition(":")[2]).rule != "reflect":
        why = (f"the scripted rule {spec!r} answers with verdicts, never a prompt (only scripted:reflect=RULE "
               "proposes one, for tests)")
    if why is not None:
        default = "" if given else " (the reflection model defaults to the judge's backend)"
        raise ConfigError(f"--reflection-backend {spec}: {why}{default}; pass --reflection-backend anthropic, "
                          "openai or openai@MODEL with --base-url for a server that can")


def make_optimizer(settings: Settings, store: RunStore, spec: Spec, *, examples: list[Example],
                   golden: list[Example] | None = None, budget: Budget | None = None, seed: int = 0,
                   on_event: Callable[[str], None] | None = None) -> Optimizer:
    """The one optimizer of every path (improve, judge --learn, the review app): the pool's labels chosen by
    settings.improve_labels, the golden veto, the gate, and the judges as the runs will serve the prompt."""
    check_learning(settings)
    judge_backends = settings.judges or [choose_backend(settings)]
    reflection_backend = settings.reflection_backend or judge_backends[0]
    # The shipped golden set is always applied, whoever builds the optimizer (improve, judge --learn, the review
    # app): a rewrite that waves "treat X as aligned" through is vetoed even when the user gave no --golden.
    pool = frozen_pool(store, choose_labels(examples, settings.improve_labels),
                       [*shipped_golden(), *(golden or [])])
    # A scripted judge is told the pool's labels (human, reference or memory: whichever the pool holds) up front.
    script = Script.of((e.sample, e.label) for e in pool.all())
    serving = Serving([make_provider(b, settings, script if is_scripted(b) else None) for b in judge_backends],
                      spec, workspace_secret(settings.workspace), store,
                      params=GenerationParams(temperature=settings.temperature, max_tokens=settings.max_tokens),
                      prices=settings.prices, max_clauses=settings.max_clauses,
                      max_response_chars=settings.max_response_chars,
                      policy=RetryPolicy(max_attempts=settings.max_attempts), memory=_memory(settings),
                      concurrency=settings.concurrency)
    return Optimizer(spec=spec, store=store, prompts=PromptStore(settings.workspace), serving=serving,
                     reflection_provider=make_provider(reflection_backend, settings),
                     pool=pool, delimiter_key=workspace_secret(settings.workspace),
                     gate=Gate(delta=settings.improve_delta, seed=seed), budget=budget,
                     minibatch=settings.improve_minibatch, concurrency=settings.concurrency, seed=seed,
                     policy=RetryPolicy(max_attempts=settings.max_attempts), on_event=on_event)


def _memory(settings: Settings) -> Any:
    """The memory the runs retrieve edge cases from (read-only), or None without one."""
    root = settings.workspace / "memory"
    if not memory_exists(root):
        return None
    from overseer.memory.judge_memory import JudgeMemory
    from overseer.memory.store import EdgeCaseStore

    return JudgeMemory(EdgeCaseStore(root), k=EDGE_CASES + 1)  # one more: the item's own copy is dropped


def all_examples(settings: Settings, store: RunStore, run_id: str | None = None,
                 finished: set[str] | None = None) -> list[Example]:
    """Everything labelled: reference labels of every run (or of `run_id`, only its `finished` samples), the
    memory's reviewed cases, and human reviews. A review is also written to the memory as an edge case: that copy
    is dropped so it does not count twice (the pool's content key would merge it anyway; dropping it here keeps
    the review's rationale)."""
    reviews = examples_from_reviews(store)
    copies = store.review_edge_case_ids()
    memory = [e for e in examples_from_memory(settings.workspace / "memory") if e.sample.id not in copies]
    runs = [e for e in examples_from_runs(store, run_id) if finished is None or e.sample.id in finished]
    return [*runs, *memory, *reviews]


class Learner:
    """During a run: count labelled results; every `every` of them, one round in the background."""

    def __init__(self, settings: Settings, store: RunStore, spec: Spec, run_id: str, judges: dict[str, Any],
                 on_event: Callable[[str], None] | None = None) -> None:
        check_learning(settings)  # a resumed --learn run's recorded settings, checked before the first sample
        self.settings, self.store, self.spec, self.run_id, self.judges = settings, store, spec, run_id, judges
        self.every, self.seen, self.say = settings.learn_every, 0, on_event or (lambda _m: None)
        self.task: asyncio.Task[list[RoundOutcome]] | None = None
        self.outcomes: list[RoundOutcome] = []
        self.prompts = PromptStore(settings.workspace)

    def note(self, labelled: bool) -> None:
        if not labelled:
            return
        self.seen += 1
        if self.seen % self.every == 0 and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self._round())

    async def _round(self) -> list[RoundOutcome]:
        examples = all_examples(self.settings, self.store, self.run_id, self.store.finished_ids(self.run_id))
        optimizer = make_optimizer(self.settings, self.store, self.spec, examples=examples, on_event=self.say,
                                   seed=self.seen)
        outcomes = await optimizer.run(1)
        self.outcomes += outcomes
        if any(o.status == "accepted" for o in outcomes):
            active = self.prompts.active()
            for judge in self.judges.values():
                judge.prompt = active  # the samples judged from now on use the accepted rewrite
            self.say(f"learning: now judging with prompt v{active.version}")
        return outcomes

    async def finish(self) -> None:
        if self.task is not None:
            await self.task


def golden_path_examples(path: Path | None, fields: Any) -> list[Example]:
    if path is None:
        return []
    from overseer.optimize.pool import load_golden

    return load_golden(path, fields)
