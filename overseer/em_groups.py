"""`overseer report`'s numbers: EM rates (both conventions, em.py) overall and by any sample field, metadata key,
`source` (the run's input file) or `judge` (each judge's own verdicts instead of the aggregate)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from overseer import em
from overseer.errors import ConfigError
from overseer.report import QUESTION_ID
from overseer.types import FinetuneDomain, Sample, SampleResult

SPECIAL = ("source", "judge")
SAMPLE_FIELDS = ("id", "model", "finetune_domain", "reference_label", "prompt")


@dataclass(frozen=True)
class Answer:
    """One answer as a report counts it: the sample, what the rule reads, where it came from and who judged it."""

    sample: Sample
    judged: em.Judged
    source: str | None
    judge: str  # "aggregate", or a judge id when grouping by judge
    reference: em.Judged | None  # the input's own scores (e.g. --label-rule betley columns), when it has them


Item = tuple[Sample, SampleResult, str | None, tuple[str, str] | None]  # (sample, result, source, score columns)


def answers(item: Item, per_judge: bool) -> list[Answer]:
    sample, result, source, columns = item
    reference = None if columns is None else em.from_reference(sample.metadata, *columns)
    if not per_judge:
        return [Answer(sample, em.Judged.from_aggregate(result.aggregate), source, "aggregate", reference)]
    return [Answer(sample, em.Judged(v.label if v.status == "scored" else None, v.alignment, v.coherence,
                                     v.generalization), source, v.provenance.judge_id, reference)
            for v in result.verdicts]


def value(answer: Answer, field: str) -> Any:
    if field == "source":
        return answer.source
    if field == "judge":
        return answer.judge
    if field in SAMPLE_FIELDS:
        found = getattr(answer.sample, field)
        return str(found) if isinstance(found, FinetuneDomain) else found  # TOPIC[:BEHAVIOUR]: a JSON-able key
    return answer.sample.metadata.get(field)


def check_fields(samples: Sequence[Sample], by: Sequence[str]) -> None:
    """A --by field no sample has is a typo: say so rather than print one group keyed None."""
    known = {*SPECIAL, *SAMPLE_FIELDS, *(k for s in samples for k in s.metadata)}
    for field in by:
        if field not in known:
            raise ConfigError(f"--by {field}: no sample has a field or metadata key {field!r} "
                             f"(known: {', '.join(sorted(known))})")


def group(key: dict[str, Any], part: Sequence[Answer]) -> dict[str, Any]:
    """G = {key, n, em: {betley, all, emergent, emergent_all}, incoherence, exclusions, notes, reference}."""
    questioned = any(a.sample.metadata.get(QUESTION_ID) not in (None, "") for a in part)
    clusters = [str(a.sample.metadata.get(QUESTION_ID, a.sample.id)) for a in part] if questioned else None
    rates = em.em_rates([a.judged for a in part], clusters)
    # The input's own scores under the same rule, side by side; null when no answer in the group carries them.
    with_reference = [(a.reference, k) for a, k in zip(part, clusters or [a.sample.id for a in part], strict=True)
                      if a.reference is not None]
    reference = None if not with_reference else em.em_rates(
        [r for r, _ in with_reference], [k for _, k in with_reference] if questioned else None).as_dict()
    return {"key": key, "n": len(part), **rates.as_dict(), "clustered_by": QUESTION_ID if questioned else None,
            "reference": reference}


def em_report(items: Sequence[Item], by: Sequence[str]) -> dict[str, Any]:
    """{"overall": G, "groups": [G, ...], "by": [...], "threshold_sweep": [...]} over the items' answers."""
    check_fields([item[0] for item in items], by)
    per_judge = "judge" in by
    every = [a for item in items for a in answers(item, per_judge)]
    overall_answers = every if not per_judge else [a for item in items for a in answers(item, False)]
    parts: dict[tuple[str, ...], list[Answer]] = defaultdict(list)
    for answer in every:
        parts[tuple(str(value(answer, f)) for f in by)].append(answer)
    groups = [group(dict(zip(by, key, strict=True)), part) for key, part in sorted(parts.items())] if by else []
    return {"overall": group({}, overall_answers), "groups": groups, "by": list(by),
            "threshold_sweep": em.sweep([a.judged for a in overall_answers])}
