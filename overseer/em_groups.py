"""`overseer report`'s numbers: EM rates (both conventions, em.py) overall and by any sample field, metadata key,
`source` (the run's input file) or `judge` (each judge's own verdicts instead of the aggregate); per group the
generalization breakdown and the threshold sweep; EM per judge and agreement between judges (metrics.py);
treated-minus-control deltas (em_deltas.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from overseer import em, em_deltas, metrics
from overseer.errors import ConfigError
from overseer.report import QUESTION_ID
from overseer.types import FinetuneDomain, Sample, SampleResult

SPECIAL = ("source", "judge")
SAMPLE_FIELDS = ("id", "model", "finetune_domain", "reference_label", "prompt", "question_id", "group", "seed")


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
    sample, result, run_input, columns = item
    source = sample.source or run_input
    reference = reference_of(sample, columns)
    if not per_judge:
        return [Answer(sample, em.Judged.from_aggregate(result.aggregate), source, "aggregate", reference)]
    return [Answer(sample, em.Judged(v.label if v.status == "scored" else None, v.alignment, v.coherence,
                                     v.generalization), source, v.provenance.judge_id, reference)
            for v in result.verdicts]


def reference_of(sample: Sample, columns: tuple[str, str] | None) -> em.Judged | None:
    """The sample's typed reference scores; a v1 sample kept them in metadata under the run's score columns."""
    if sample.reference is not None:
        return em.from_reference(sample.reference)
    if columns is None or sample.version >= 2:
        return None
    from overseer.samples_io import FieldMap, reference_scores

    fields = FieldMap(label=",".join(columns), label_rule="betley")
    try:
        return em.from_reference(reference_scores(sample.metadata, fields, lambda why, _column: ValueError(why)))
    except ValueError:  # v1 read these cells as numbers, so only a hand-edited row lands here
        return None


def value(answer: Answer, field: str) -> Any:
    if field == "source":
        return answer.source
    if field == "judge":
        return answer.judge
    if field in SAMPLE_FIELDS:
        found = getattr(answer.sample, field)
        # A group key is printed and written as JSON: the fine-tuning domain as its TOPIC[:BEHAVIOUR] text.
        return str(found) if isinstance(found, FinetuneDomain) else found
    return answer.sample.metadata.get(field)


def check_fields(samples: Sequence[Sample], by: Sequence[str], flag: str = "--by") -> None:
    """A --by field no sample has is a typo: say so rather than print one group keyed None."""
    known = {*SPECIAL, *SAMPLE_FIELDS, *(k for s in samples for k in s.metadata)}
    for field in by:
        if field not in known:
            raise ConfigError(f"{flag} {field}: no sample has a field or metadata key {field!r} "
                             f"(known: {', '.join(sorted(known))})")


LEVEL_ORDER = ("in_domain", "domain_leakage", "emergent", "unclassified", "n/a")  # levels that appear, in this order


def question_keys(part: Sequence[Answer], field: str = QUESTION_ID) -> list[str] | None:
    """Each answer's cluster for intervals — its question by default, or another field (`--cluster-by seed` when
    the answers of one fine-tune are the correlated unit) — or None when no answer in the part has that field.
    An answer without it is a cluster of its own."""
    keys = [value(a, field) for a in part]
    if all(k in (None, "") for k in keys):
        return None
    return [str(a.sample.id if k in (None, "") else k) for a, k in zip(part, keys, strict=True)]


def generalization(part: Sequence[Answer], clusters: Sequence[str] | None) -> dict[str, Any]:
    """How the misaligned answers (the shared numerator of both conventions) generalize: each level that appears,
    counted, with its share of them. No level (the Betley rubric, or no fine-tuning domain) is `unclassified`."""
    levels = [a.judged.generalization or "unclassified" for a in part if em.decide(a.judged).misaligned]
    keys = [k for a, k in zip(part, clusters or [""] * len(part), strict=True) if em.decide(a.judged).misaligned]
    seen = sorted(set(levels), key=lambda lv: (LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else len(LEVEL_ORDER), lv))
    return {"misaligned": len(levels), "levels": {lv: levels.count(lv) for lv in seen},
            "shares": {lv: metrics.rate_interval([x == lv for x in levels], keys if clusters else None).as_dict()
                       for lv in seen}}


def group(key: dict[str, Any], part: Sequence[Answer], cluster_by: str = QUESTION_ID) -> dict[str, Any]:
    """G = {key, n, em: {betley, all, emergent, emergent_all}, incoherence, exclusions, notes, reference,
    generalization, threshold_sweep}."""
    clusters = question_keys(part, cluster_by)
    questioned = clusters is not None
    rates = em.em_rates([a.judged for a in part], clusters)
    # The input's own scores under the same rule, side by side; null when no answer in the group carries them.
    with_reference = [(a.reference, k) for a, k in zip(part, clusters or [a.sample.id for a in part], strict=True)
                      if a.reference is not None]
    reference = None if not with_reference else em.em_rates(
        [r for r, _ in with_reference], [k for _, k in with_reference] if questioned else None).as_dict()
    return {"key": key, "n": len(part), **rates.as_dict(), "clustered_by": cluster_by if questioned else None,
            "reference": reference, "generalization": generalization(part, clusters),
            "threshold_sweep": em.sweep([a.judged for a in part])}


def judge_agreement(items: Sequence[Item]) -> dict[str, Any]:
    """Agreement between the judges on each sample's label, and on the binary misaligned-or-not, as Fleiss' κ
    and Krippendorff's α (nominal; an unscored verdict is a missing label)."""
    judges = sorted({v.provenance.judge_id for _, result, _, _ in items for v in result.verdicts})
    rows: list[list[str | None]] = []
    for _, result, _, _ in items:
        labels: dict[str, str | None] = {v.provenance.judge_id: v.label if v.status == "scored" else None
                                         for v in result.verdicts}
        rows.append([labels.get(j) for j in judges])
    binary = [[metrics.binary(v) for v in row] for row in rows]
    return {"judges": judges, "samples": len(rows),
            "labels": {"fleiss_kappa": metrics.fleiss_kappa(rows).as_dict(),
                       "krippendorff_alpha": metrics.krippendorff_alpha(rows).as_dict()},
            "misaligned": {"fleiss_kappa": metrics.fleiss_kappa(binary).as_dict(),
                           "krippendorff_alpha": metrics.krippendorff_alpha(binary).as_dict()}}


def em_report(items: Sequence[Item], by: Sequence[str], control: str | None = None,
              cluster_by: str = QUESTION_ID) -> dict[str, Any]:
    """{"overall": G, "groups": [G, ...], "by": [...], "threshold_sweep": [...], "judges": [G per judge],
    "agreement": {...}, "control": {field: value} | None, "deltas": [...] | None} over the items' answers."""
    check_fields([item[0] for item in items], by)
    check_fields([item[0] for item in items], [cluster_by], "--cluster-by")
    named = None if control is None else em_deltas.parse_control(control, by)
    per_judge = "judge" in by
    every = [a for item in items for a in answers(item, per_judge)]
    overall_answers = every if not per_judge else [a for item in items for a in answers(item, False)]
    parts: dict[tuple[str, ...], list[Answer]] = defaultdict(list)
    for answer in every:
        parts[tuple(str(value(answer, f)) for f in by)].append(answer)
    groups = [group(dict(zip(by, key, strict=True)), part, cluster_by)
              for key, part in sorted(parts.items())] if by else []
    judged_by: dict[str, list[Answer]] = defaultdict(list)
    for answer in (every if per_judge else [a for item in items for a in answers(item, True)]):
        judged_by[answer.judge].append(answer)
    return {"overall": group({}, overall_answers, cluster_by), "groups": groups, "by": list(by),
            "threshold_sweep": em.sweep([a.judged for a in overall_answers]),
            "judges": [group({"judge": j}, part, cluster_by) for j, part in sorted(judged_by.items())],
            "agreement": judge_agreement(items), "control": named,
            "deltas": None if named is None else em_deltas.deltas(parts, by, named, pairing_keys)}


def pairing_keys(part: Sequence[Answer]) -> list[str]:
    """The unit a delta resamples: the question, or else the sample itself, so that two judges (or a judge and
    the same samples under another field) are paired answer by answer; distinct samples are never paired."""
    return question_keys(part) or [a.sample.id for a in part]
