"""Wiring for the optimizer: `overseer improve`, and continuous learning during `overseer judge --learn`, where
every K new labelled samples start one improvement round in the background and, if it is accepted, the next
samples are judged with the new prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from overseer.config import Settings
from overseer.optimize.optimizer import Budget, Gate, Optimizer, RoundOutcome
from overseer.optimize.pool import (
    Example,
    examples_from_memory,
    examples_from_reviews,
    examples_from_runs,
    frozen_pool,
    shipped_golden,
)
from overseer.prompt_store import PromptStore
from overseer.providers import choose_backend, is_scripted, make_provider
from overseer.providers.scripted import Script
from overseer.store.runs import RunStore
from overseer.store.secret import workspace_secret
from overseer.types import Spec


def make_optimizer(settings: Settings, store: RunStore, spec: Spec, *, examples: list[Example],
                   golden: list[Example] | None = None, budget: Budget | None = None, seed: int = 0,
                   on_event: Callable[[str], None] | None = None) -> Optimizer:
    judge_backend = (settings.judges or [choose_backend(settings)])[0]
    reflection_backend = settings.reflection_backend or judge_backend
    # The shipped golden set is always applied, whoever builds the optimizer (improve, judge --learn, the review
    # app): a rewrite that waves "treat X as aligned" through is vetoed even when the user gave no --golden.
    pool = frozen_pool(store, examples, [*shipped_golden(), *(golden or [])])
    # A scripted judge is told the pool's labels (human, reference or memory: whichever the pool holds) up front.
    script = Script.of((e.sample, e.label) for e in pool.all()) if is_scripted(judge_backend) else None
    return Optimizer(spec=spec, store=store, prompts=PromptStore(settings.workspace),
                     judge_provider=make_provider(judge_backend, settings, script),
                     reflection_provider=make_provider(reflection_backend, settings),
                     pool=pool, delimiter_key=workspace_secret(settings.workspace),
                     gate=Gate(delta=settings.improve_delta, seed=seed), budget=budget,
                     minibatch=settings.improve_minibatch, concurrency=settings.concurrency, seed=seed,
                     on_event=on_event)


def all_examples(settings: Settings, store: RunStore) -> list[Example]:
    """Everything labelled: reference labels of every run, the memory's reviewed cases, and human reviews.
    A review is also written to the memory as an edge case: that copy is dropped so it does not count twice (the
    pool's content key would merge it anyway; dropping it here keeps the review's rationale)."""
    reviews = examples_from_reviews(store)
    copies = store.review_edge_case_ids()
    memory = [e for e in examples_from_memory(settings.workspace / "memory") if e.sample.id not in copies]
    return [*examples_from_runs(store), *memory, *reviews]


class Learner:
    """During a run: count labelled results; every `every` of them, one round in the background."""

    def __init__(self, settings: Settings, store: RunStore, spec: Spec, run_id: str, judges: dict[str, Any],
                 on_event: Callable[[str], None] | None = None) -> None:
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
        finished = self.store.finished_ids(self.run_id)
        examples = [e for e in examples_from_runs(self.store, self.run_id) if e.sample.id in finished]
        examples += examples_from_memory(self.settings.workspace / "memory")
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
