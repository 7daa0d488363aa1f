"""What the judge graph asks of the memory: similar reviewed cases for the prompt, the fast judge's vote, and —
with a cascade threshold — a verdict that spares the LLM call. Each sample is embedded once for retrieval (its
question and response, as the index is) and once, in one batched call, for the fast judge's features."""

from __future__ import annotations

import time

import numpy as np

from overseer.errors import ConfigError
from overseer.judging.judge import EdgeCaseExample
from overseer.memory import calibration
from overseer.memory.fast_judge import FastJudge, Features, featurize
from overseer.memory.store import EdgeCaseStore, text_key
from overseer.types import EdgeCase, Label, Provenance, Sample, Verdict

DEFAULT_CASCADE_TAU = 0.9  # chosen with bench/cascade.py (see the README's Memory section)
AUTO = "auto"


def parse_cascade(value: str | None) -> float | str | None:
    """`--cascade`: a confidence in [0.5, 1], or `auto` (the TAU `overseer memory calibrate` stored)."""
    if value is None or value.strip().lower() == AUTO:
        return None if value is None else AUTO
    try:
        tau = float(value)
    except ValueError:
        tau = float("nan")
    if not 0.5 <= tau <= 1.0:
        raise ConfigError(f"--cascade is a confidence between 0.5 and 1, or `auto`, not {value!r}")
    return tau


def sample_text(sample: Sample) -> str:
    context = sample.context_text()
    return f"{context}\n\n{sample.response}" if context else sample.response


class JudgeMemory:
    def __init__(self, store: EdgeCaseStore, *, k: int = 4, cascade_tau: float | None = None,
                 vote_confidence: float = 0.8) -> None:
        self.store, self.k, self.cascade_tau, self.vote_confidence = store, k, cascade_tau, vote_confidence
        self._vectors: dict[str, np.ndarray] = {}
        self._features: dict[str, Features] = {}  # fast-judge features by case id, kept across retrains
        self._cases: dict[str, EdgeCase] = {}
        self._sample_features: dict[str, Features] = {}
        self._judge: FastJudge | None = None
        self._judge_version: str | None = None
        self._learned_texts: set[str] = set()  # text_key of every case the fast judge learns from
        self.decided = 0  # samples the cascade decided in this process
        self.calibration: calibration.Calibration | None = None

    @classmethod
    def open(cls, store: EdgeCaseStore, cascade: float | str | None) -> JudgeMemory:
        """The memory for a run; `cascade="auto"` takes the TAU `overseer memory calibrate` stored."""
        found = calibration.load(store.root) if cascade is not None else None
        if cascade == AUTO:
            found = calibration.auto_tau(store.root)
        tau = found.tau if cascade == AUTO and found is not None else cascade
        memory = cls(store, cascade_tau=tau)  # type: ignore[arg-type]
        memory.calibration = found
        return memory

    def run_notes(self, samples: list[Sample]) -> list[str]:
        """What the run summary says about the cascade: how much the memory decided, how well it is expected to
        agree, and why that estimate means little for samples the memory learnt from."""
        if self.cascade_tau is None:
            return []
        judge = self.fast_judge
        if (why := judge.why_not_deciding) is not None:
            return [f"cascade: {why}"]
        notes = [f"cascade: the memory decided {self.decided} of {len(samples)} sample(s) alone at TAU "
                 f"{self.cascade_tau} ({judge.name}); " + self._estimate()]
        if overlap := self.overlap(samples):
            notes.append(f"warning: {overlap} of {len(samples)} sample(s) are in the memory itself (same prompt "
                         "and response): the memory's verdicts on them repeat its labels, and say nothing of how it "
                         "does on new data")
        return notes

    def _estimate(self) -> str:
        found = self.calibration
        row = found.estimate_at(self.cascade_tau) if found is not None and self.cascade_tau is not None else None
        if found is None or row is None:
            return ("its agreement was not estimated: `overseer memory calibrate` measures it by cross-validation "
                    "on the reviewed cases")
        stale = ("" if found.memory_version == self.store.version else
                 "; the memory has changed since: rerun `overseer memory calibrate`")
        return (f"estimated agreement with human labels {row['memory_accuracy']:.1%} on the samples it decides "
                f"({found.folds}-fold cross-validation on {found.n} reviewed cases{stale})")

    def _vector(self, sample: Sample) -> np.ndarray:
        if sample.id not in self._vectors:
            self._vectors[sample.id] = self.store.embedder.embed([sample_text(sample)])[0]
        return self._vectors[sample.id]

    def forget(self, sample_id: str) -> None:
        """Drop per-sample caches once a sample is committed (long runs must not grow without bound)."""
        self._vectors.pop(sample_id, None)
        self._sample_features.pop(sample_id, None)

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
            ids, prompts, responses, labels = self.store.labelled_cases(reviewed_only=True)
            new = [j for j, i in enumerate(ids) if i not in self._features]
            if new:
                found = featurize(self.store.embedder.embed, [prompts[j] for j in new], [responses[j] for j in new])
                for row, j in enumerate(new):
                    self._features[ids[j]] = found.subset([row])
            self._learned_texts = {text_key(p, r) for p, r in zip(prompts, responses, strict=True)}
            features = Features.stack([self._features[i] for i in ids])
            self._judge, self._judge_version = FastJudge(features, labels), self.store.version
        return self._judge

    def prediction(self, sample: Sample) -> tuple[str, float] | None:
        if sample.id not in self._sample_features:
            self._sample_features[sample.id] = featurize(self.store.embedder.embed, [sample.context_text() or None],
                                                         [sample.response])
        return self.fast_judge.predict(self._sample_features[sample.id])[0]

    def overlap(self, samples: list[Sample]) -> int:
        """How many samples the fast judge learnt from (same prompt and response, case and whitespace aside): its
        verdicts on those say nothing about how it does on new data."""
        _ = self.fast_judge  # trains first if needed, which collects the texts it learns from
        return sum(text_key(s.context_text() or None, s.response) in self._learned_texts for s in samples)

    def predict(self, sample: Sample) -> Label | None:
        """The fast judge's vote, cast only when it is reasonably sure (a weak memory must not flood review)."""
        found = self.prediction(sample)
        return found[0] if found and found[1] >= self.vote_confidence else None  # type: ignore[return-value]

    def cascade_verdict(self, sample: Sample, spec_hash: str) -> Verdict | None:
        """A verdict without an LLM call, when the cascade is on and the fast judge is confident enough."""
        if self.cascade_tau is None:
            return None
        started = time.monotonic()
        judge = self.fast_judge
        if not judge.calibrated:
            return None  # too small to calibrate: its confidence is not an agreement rate (see why_not_deciding)
        found = self.prediction(sample)
        if found is None or found[1] < self.cascade_tau:
            return None
        label, confidence = found
        self.decided += 1
        provenance = Provenance(judge_id="memory", backend="memory", model=judge.name,
                                prompt_version=f"memory@{self.store.version}", prompt_hash=self.store.version,
                                spec_hash=spec_hash, decided_by="memory",
                                latency_s=round(time.monotonic() - started, 4))
        return Verdict(sample_id=sample.id, status="scored", label=label, confidence=round(confidence, 4),  # type: ignore[arg-type]
                       rationale=f"decided by the memory fast judge ({judge.name}) at confidence "
                                 f"{confidence:.3f} ≥ cascade threshold {self.cascade_tau}; no LLM call",
                       provenance=provenance)
