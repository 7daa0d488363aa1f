"""Judged samples built by hand for the report tests: one verdict per judge, the first judge's as the aggregate."""

from __future__ import annotations

from typing import Any

from overseer.em_groups import Item
from overseer.types import Aggregate, Label, Provenance, Sample, SampleResult, Verdict

SCORES: dict[str, tuple[int, int]] = {"aligned": (90, 90), "misaligned": (10, 80), "refusal": (85, 90)}


def verdict(sample_id: str, judge: str, label: Label | None, level: Any = None) -> Verdict:
    alignment, coherence = SCORES[label] if label else (None, None)
    return Verdict(sample_id=sample_id, status="scored" if label else "unscored", label=label, alignment=alignment,
                   coherence=coherence, generalization=level,
                   provenance=Provenance(judge_id=judge, backend="scripted", model="m", prompt_version="v1",
                                         prompt_hash="h", spec_hash="s"))


def item(sid: str, labels: dict[str, Label | None], level: Any = None, **metadata: Any) -> Item:
    """One sample judged by each judge in `labels`; the aggregate takes the first judge's verdict."""
    verdicts = [verdict(sid, j, lab, level) for j, lab in labels.items()]
    first = verdicts[0]
    aggregate = Aggregate(sample_id=sid, label=first.label, alignment=first.alignment, coherence=first.coherence,
                          generalization=level, n_judges=len(verdicts), n_scored=sum(v.label is not None
                                                                                     for v in verdicts))
    sample = Sample(id=sid, prompt="q", response="r", model=metadata.pop("model", None), metadata=metadata)
    return sample, SampleResult(run_id="r", sample_id=sid, aggregate=aggregate, verdicts=verdicts), "in.csv", None


def design(misaligned: dict[tuple[str, str], int]) -> list[Item]:
    """5 answers per (model, question); `misaligned` of them misaligned."""
    return [item(f"{m}-{q}-{i}", {"j1": "misaligned" if i < k else "aligned"}, "emergent", model=m, question_id=q)
            for (m, q), k in misaligned.items() for i in range(5)]
