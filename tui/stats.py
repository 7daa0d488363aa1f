"""Numbers for the stats screen: how the judges agree with the humans so far, and the EM rate of the runs in
scope under both conventions and emergent-only. Computed by overseer.metrics and em.em_rates, like `eval` and the
run summary, so the same data gives the same numbers everywhere."""

from __future__ import annotations

from typing import Any

from overseer import em, metrics
from overseer.store.runs import ReviewRecord, RunStore
from overseer.types import LABELS

# The judge's unscored reply is a miss against the human (a column of its own in the confusion matrix).
STATS_UNSCORED: metrics.Unscored = "miss"


def _measure(reviews: list[ReviewRecord], labels: list[str]) -> metrics.Agreement:
    return metrics.agreement([r.label for r in reviews], [r.judge_label for r in reviews], unscored=STATS_UNSCORED,
                             labels=labels)


def breakdown(groups: dict[str, list[ReviewRecord]], labels: list[str]) -> list[dict[str, Any]]:
    """Judge-vs-human agreement and κ of each group (a reviewer, a review reason), largest first."""
    out = []
    for name, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        measured = _measure(group, labels)
        out.append({"name": name, "n": len(group), "agreement": measured.accuracy, "kappa": measured.kappa.value,
                    "kappa_undefined": measured.kappa.undefined})
    return out


def session_stats(store: RunStore, reviews: list[ReviewRecord], run_id: str | None) -> dict[str, Any]:
    labels = [*LABELS, metrics.UNSCORED]
    measured = _measure(reviews, labels)
    by_reviewer: dict[str, list[ReviewRecord]] = {}
    for r in reviews:
        by_reviewer.setdefault(r.reviewer, []).append(r)
    reasons = {(item.run_id, item.sample_id): item.reasons for item in store.review_items(run_id, status="done")}
    by_reason: dict[str, list[ReviewRecord]] = {}
    for r in reviews:  # an item queued for two reasons counts in both
        for reason in reasons.get((r.run_id, r.sample_id), []):
            by_reason.setdefault(reason, []).append(r)
    # The rule's inputs straight from SQLite: the stats screen must not parse every result of a large run.
    rates = em.em_rates([em.Judged(label, alignment, coherence, level)
                         for label, alignment, coherence, level in store.em_inputs(run_id)])
    humans_misaligned = [metrics.is_violation(r.label) for r in reviews]
    return {"n_reviews": len(reviews), "kappa": measured.kappa.value, "kappa_undefined": measured.kappa.undefined,
            "by_reviewer": breakdown(by_reviewer, labels), "by_reason": breakdown(by_reason, labels),
            "labels": labels, "confusion": measured.confusion if reviews else [], "agreement": measured.accuracy,
            "em_rate_betley": rates.betley, "em_rate_all": rates.all, "em_rate_emergent_only": rates.emergent,
            "incoherence": rates.incoherence, "em_notes": rates.notes, "n_scored": rates.betley.denominator,
            "scripted_verdicts": store.scripted_verdicts(run_id),
            "human_misaligned_rate": sum(humans_misaligned) / len(humans_misaligned) if humans_misaligned else None}
