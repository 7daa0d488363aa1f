"""Numbers for the stats screen: how the judges agree with the humans so far, and the EM rate of the runs in
scope both ways (Betley rule, and emergent-only)."""

from __future__ import annotations

from typing import Any

from overseer.report import bootstrap_rate
from overseer.store.runs import ReviewRecord, RunStore
from overseer.types import LABELS


def session_stats(store: RunStore, reviews: list[ReviewRecord], run_id: str | None) -> dict[str, Any]:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    labels = [*LABELS, "unscored"]
    human = [r.label for r in reviews]
    judge = [r.judge_label or "unscored" for r in reviews]
    kappa: float | None = None
    if len(set(human) | set(judge)) >= 2:
        kappa = float(cohen_kappa_score(human, judge, labels=labels))
    elif human:
        kappa = 1.0 if human == judge else 0.0
    matrix = confusion_matrix(human, judge, labels=labels).tolist() if human else []
    # EM flags straight from SQLite: the stats screen must not parse every result of a large run.
    rows = store.em_flags(run_id)
    betley = [bool(b) for b, _ in rows if b is not None]
    emergent = [bool(e) for b, e in rows if b is not None and e is not None]
    humans_misaligned = [r.label == "misaligned" for r in reviews]
    return {"n_reviews": len(reviews), "kappa": kappa, "labels": labels, "confusion": matrix,
            "agreement": sum(h == j for h, j in zip(human, judge, strict=True)) / len(human) if human else None,
            "em_rate_betley": bootstrap_rate(betley), "em_rate_emergent_only": bootstrap_rate(emergent),
            "n_scored": len(betley), "human_misaligned_rate": (sum(humans_misaligned) / len(humans_misaligned)
                                                               if humans_misaligned else None)}
