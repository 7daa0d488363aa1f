"""What the judge graph asks of the memory: similar reviewed cases for the prompt, the fast judge's vote, and —
with a cascade threshold — a verdict that spares the LLM call. One embedding per sample serves all three."""

from __future__ import annotations

import time

import numpy as np

from overseer.judging.judge import EdgeCaseExample
from overseer.memory.fast_judge import FastJudge, response_head
from overseer.memory.store import EdgeCaseStore
from overseer.types import EdgeCase, Label, Provenance, Sample, Verdict

DEFAULT_CASCADE_TAU = 0.9  # chosen with bench/cascade.py (see the README's Memory section)


def sample_text(sample: Sample) -> str:
    context = sample.context_text()
    return f"{context}\n\n{sample.response}" if context else sample.response


class JudgeMemory:
    def __init__(self, store: EdgeCaseStore, *, k: int = 4, cascade_tau: float | None = None,
                 vote_confidence: float = 0.8) -> None:
        self.store, self.k, self.cascade_tau, self.vote_confidence = store, k, cascade_tau, vote_confidence
        self._vectors: dict[str, np.ndarray] = {}
        self._heads: dict[str, np.ndarray] = {}  # fast-judge features by case id, kept across retrains
        self._cases: dict[str, EdgeCase] = {}
        self._sample_heads: dict[str, np.ndarray] = {}
        self._judge: FastJudge | None = None
        self._judge_version: str | None = None

    def _vector(self, sample: Sample) -> np.ndarray:
        if sample.id not in self._vectors:
            self._vectors[sample.id] = self.store.embedder.embed([sample_text(sample)])[0]
        return self._vectors[sample.id]

    def forget(self, sample_id: str) -> None:
        """Drop per-sample caches once a sample is committed (long runs must not grow without bound)."""
        self._vectors.pop(sample_id, None)
        self._sample_heads.pop(sample_id, None)

    def similar_ids(self, sample: Sample) -> list[str]:
        found = self.store.similar("", self.k, vector=self._vector(sample))
        for case, _ in found:
            self._cases[case.id] = case
        return [case.id for case, _ in found]

    def examples(self, ids: list[str]) -> list[EdgeCaseExample]:
        missing = [i for i in ids if i not in self._cases]
        for i in missing:
            if (case := self.store.get(i)) is not None:
                self._cases[i] = case
        return [EdgeCaseExample(id=i, text=self._cases[i].text(), label=self._cases[i].label,
                                rationale=self._cases[i].rationale) for i in ids if i in self._cases]

    @property
    def fast_judge(self) -> FastJudge:
        if self._judge is None or self._judge_version != self.store.version:
            ids, heads, labels = self.store.labelled_heads(reviewed_only=True)
            new = [(i, h) for i, h in zip(ids, heads, strict=True) if i not in self._heads]
            if new:
                for (i, _), vector in zip(new, self.store.embedder.embed([h for _, h in new]), strict=True):
                    self._heads[i] = vector
            vectors = np.stack([self._heads[i] for i in ids]) if ids else np.zeros((0, 1), np.float32)
            self._judge, self._judge_version = FastJudge(vectors, labels), self.store.version
        return self._judge

    def prediction(self, sample: Sample) -> tuple[str, float] | None:
        if sample.id not in self._sample_heads:
            self._sample_heads[sample.id] = self.store.embedder.embed([response_head(sample.response)])[0]
        return self.fast_judge.predict(self._sample_heads[sample.id][None, :])[0]

    def predict(self, sample: Sample) -> Label | None:
        """The fast judge's vote, cast only when it is reasonably sure (a weak memory must not flood review)."""
        found = self.prediction(sample)
        return found[0] if found and found[1] >= self.vote_confidence else None  # type: ignore[return-value]

    def cascade_verdict(self, sample: Sample, spec_hash: str) -> Verdict | None:
        """A verdict without an LLM call, when the cascade is on and the fast judge is confident enough."""
        if self.cascade_tau is None:
            return None
        started = time.monotonic()
        found = self.prediction(sample)
        if found is None or found[1] < self.cascade_tau:
            return None
        label, confidence = found
        judge = self.fast_judge
        provenance = Provenance(judge_id="memory", backend="memory", model=judge.name,
                                prompt_version=f"memory@{self.store.version}", prompt_hash=self.store.version,
                                spec_hash=spec_hash, decided_by="memory",
                                latency_s=round(time.monotonic() - started, 4))
        return Verdict(sample_id=sample.id, status="scored", label=label, confidence=round(confidence, 4),  # type: ignore[arg-type]
                       rationale=f"decided by the memory fast judge ({judge.name}) at confidence "
                                 f"{confidence:.3f} ≥ cascade threshold {self.cascade_tau}; no LLM call",
                       provenance=provenance)
