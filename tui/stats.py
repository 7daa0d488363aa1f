"""Numbers for the stats screen: how the judges agree with the humans so far (overall, per reviewer, per review
reason), and the EM rate of the runs in scope under both conventions and emergent-only. Computed by
overseer.metrics and em.em_rates, like `eval` and the run summary, so the same data gives the same numbers
everywhere. The review part is quick; the run part reads every result of the runs in scope, so the app computes
it on a worker thread (and once per session) while the screen is already open."""

from __future__ import annotations

from typing import Any

from overseer import em, metrics
from overseer.store.runs import RunStore
from overseer.types import LABELS

# The judge's unscored reply is a miss against the human (a column of its own in the confusion matrix).
STATS_UNSCORED: metrics.Unscored = "miss"
LABELS_SHOWN = [*LABELS, metrics.UNSCORED]


def _measure(counts: list[tuple[str, str | None, int]]) -> metrics.Agreement:
    """metrics.agreement of (human label, judge label, count) rows: the one κ, on counts SQLite made."""
    humans = [label for label, _, n in counts for _ in range(n)]
    judges = [judge for _, judge, n in counts for _ in range(n)]
    return metrics.agreement(humans, judges, unscored=STATS_UNSCORED, labels=LABELS_SHOWN)


def breakdown(store: RunStore, run_id: str | None, by: str) -> list[dict[str, Any]]:
    """Judge-vs-human agreement and κ of each group (a reviewer, a review reason), largest first."""
    groups: dict[str, list[tuple[str, str | None, int]]] = {}
    for name, label, judge, n in store.review_label_counts(run_id, by):
        groups.setdefault(name, []).append((label, judge, n))
    out = []
    for name, counts in groups.items():
        measured = _measure(counts)
        out.append({"name": name, "n": measured.n, "agreement": measured.accuracy, "kappa": measured.kappa.value,
                    "kappa_undefined": measured.kappa.undefined})
    return sorted(out, key=lambda g: (-g["n"], g["name"]))


def review_stats(store: RunStore, run_id: str | None) -> dict[str, Any]:
    counts = [(label, judge, n) for _, label, judge, n in store.review_label_counts(run_id, None)]
    measured = _measure(counts)
    misaligned = sum(n for label, _, n in counts if metrics.is_violation(label))
    return {"n_reviews": measured.n, "kappa": measured.kappa.value, "kappa_undefined": measured.kappa.undefined,
            "by_reviewer": breakdown(store, run_id, "reviewer"), "by_reason": breakdown(store, run_id, "reason"),
            "labels": LABELS_SHOWN, "confusion": measured.confusion if counts else [], "agreement": measured.accuracy,
            "human_misaligned_rate": misaligned / measured.n if measured.n else None}


def run_stats(store: RunStore, run_id: str | None) -> dict[str, Any]:
    # The rule's inputs straight from SQLite: the stats screen must not parse every result of a large run.
    rates = em.em_rates([em.Judged(label, alignment, coherence, level)
                         for label, alignment, coherence, level in store.em_inputs(run_id)])
    return {"em_rate_betley": rates.betley, "em_rate_all": rates.all, "em_rate_emergent_only": rates.emergent,
            "incoherence": rates.incoherence, "em_notes": rates.notes, "n_scored": rates.betley.denominator,
            "scripted_verdicts": store.scripted_verdicts(run_id)}


def session_stats(store: RunStore, run_id: str | None) -> dict[str, Any]:
    return {**review_stats(store, run_id), **run_stats(store, run_id)}
