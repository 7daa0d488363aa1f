"""How the optimizer judges a prompt: as the runs that will use it do. Every configured judge (each backend spec
of --judges, with the run's generation parameters, price overrides, response cap and clause count) judges each
item with the reviewed edge cases the memory would show it — never the item's own copy, which would hand the
judge its label — and the verdicts are combined by the run's vote (judging/aggregate.py). A gain measured on
one backend, with no edge cases and default settings, would not be the gain the served prompt delivers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from overseer.clauses import ClauseSelector
from overseer.judging.aggregate import aggregate
from overseer.judging.judge import EdgeCaseExample, Judge
from overseer.optimize.pool import Example, content_key
from overseer.providers.base import GenerationParams, Provider
from overseer.providers.retry import RetryPolicy
from overseer.store.runs import RunStore
from overseer.types import Generalization, Label, PromptVersion, Sample, Spec

EDGE_CASES = 4  # as many as the run's memory retrieves (memory.judge_memory.JudgeMemory's k)


@dataclass
class Served:
    """One item as the served judges see it: the voted label and mean scores (what the EM rule reads)."""

    label: Label | None
    alignment: float | None = None
    coherence: float | None = None
    generalization: Generalization | None = None
    rationale: str = ""

    def as_state(self) -> dict[str, Any]:
        return {"label": self.label, "alignment": self.alignment, "coherence": self.coherence,
                "generalization": self.generalization}

    @classmethod
    def from_state(cls, value: Any) -> Served:
        """A saved round's entry: this record, or a bare label (rounds saved before scores were kept)."""
        if isinstance(value, dict):
            return cls(value.get("label"), value.get("alignment"), value.get("coherence"),
                       value.get("generalization"))
        return cls(value)


@dataclass
class Serving:
    """The judge panel a prompt serves under, and the memory its runs retrieve from (None: no memory)."""

    providers: Sequence[Provider]
    spec: Spec
    delimiter_key: bytes
    cache: RunStore
    params: GenerationParams = field(default_factory=GenerationParams)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_clauses: int = 16
    max_response_chars: int | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    memory: Any = None  # overseer.memory.judge_memory.JudgeMemory
    concurrency: int = 8

    def __post_init__(self) -> None:
        self.selector = ClauseSelector(self.spec, self.max_clauses)
        self.calls = asyncio.Semaphore(self.concurrency)

    def describe(self) -> str:
        judges = ", ".join(f"{p.backend}@{p.model}" for p in self.providers)
        cases = "with the memory's edge cases" if self.memory is not None else "no memory"
        return f"{len(self.providers)} judge(s) ({judges}), {self.max_clauses} clauses max, {cases}"

    def judges(self, prompt: PromptVersion) -> list[Judge]:
        return [Judge(judge_id=f"optimizer#{i}@{prompt.ref}", provider=provider, prompt=prompt, spec=self.spec,
                      delimiter_key=self.delimiter_key, params=self.params, policy=self.policy, prices=self.prices,
                      cache=self.cache, gate=self.calls, max_response_chars=self.max_response_chars)
                for i, provider in enumerate(self.providers)]

    def edge_cases(self, sample: Sample) -> list[EdgeCaseExample]:
        """The reviewed cases a run would show for this sample, minus any copy of the sample itself (matched by
        the split's content key, so a memory copy `ec-…` of a run sample `jbb-…` is excluded too)."""
        if self.memory is None:
            return []
        own = content_key(sample)
        ids = self.memory.similar_ids(sample)
        cases = self.memory.examples(ids)
        kept = [c for c in cases if (case := self.memory.store.get(c.id)) is None
                or content_key(Sample(id=case.id, prompt=case.prompt, response=case.response)) != own]
        return kept[:EDGE_CASES]

    async def judge(self, judges: list[Judge], example: Example) -> tuple[Served, int, float]:
        """(the item's served verdict, LLM calls spent, dollars spent at the configured prices)."""
        sample = example.sample
        clauses = self.selector.select(sample)
        cases = self.edge_cases(sample)
        verdicts = await asyncio.gather(*(j.judge(sample, clauses, cases) for j in judges))
        fresh = [v for v in verdicts if not v.provenance.cached]
        combined = aggregate(sample, list(verdicts))
        why = next((v.rationale for v in verdicts if v.label == combined.label and v.rationale), "")
        served = Served(combined.label, combined.alignment, combined.coherence, combined.generalization, why)
        return served, sum(v.provenance.attempts for v in fresh), sum(v.provenance.cost_usd for v in fresh)
