"""The memory fast judge: a classifier on the embeddings of human-labelled cases. It votes beside the LLM judges
(disagreement sends a sample to review) and, with `--cascade TAU`, decides samples alone when its calibrated
confidence reaches TAU. Training takes milliseconds, so it simply retrains whenever the memory changes."""

from __future__ import annotations

from collections import Counter

import numpy as np

MIN_FOR_LOGISTIC = 30  # below this (or with a tiny class) a distance-weighted kNN is steadier
MIN_PER_CLASS = 6
# The fast judge reads the opening of the response, not the whole case: whether a model complied or refused,
# ranted or answered, shows in its first sentences, and a mean-pooled embedding of a long answer dilutes it.
# On JailbreakBench (bench/cascade.py, both behaviour splits) this saved ~1.5x more LLM calls at the same loss.
HEAD_CHARS = 150


def response_head(response: str) -> str:
    return response.strip()[:HEAD_CHARS]


class FastJudge:
    def __init__(self, vectors: np.ndarray, labels: list[str]) -> None:
        self.n = len(labels)
        self.classes = sorted(set(labels))
        counts = Counter(labels)
        self.kind = "none"
        self.model = None
        if len(self.classes) < 2:
            return  # one label only: it would "predict" that label with certainty, which proves nothing
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier

        smallest = min(counts.values())
        if self.n >= MIN_FOR_LOGISTIC and smallest >= MIN_PER_CLASS:
            # Logistic loss is a proper scoring rule, so its probabilities are calibrated in-distribution; a
            # CalibratedClassifierCV wrapper was measured too and only cost coverage (it trains on 2/3 folds).
            self.model = LogisticRegression(C=4.0, max_iter=3000)
            self.kind = "logistic"
        else:
            self.model = KNeighborsClassifier(n_neighbors=min(5, self.n), weights="distance", metric="cosine")
            self.kind = "knn"
        self.model.fit(vectors, labels)

    @property
    def name(self) -> str:
        return f"memory-{self.kind}(n={self.n})"

    def predict(self, vectors: np.ndarray) -> list[tuple[str, float] | None]:
        """(label, confidence) per row, or None when there is nothing to learn from yet."""
        if self.model is None or len(vectors) == 0:
            return [None] * len(vectors)
        probabilities = self.model.predict_proba(vectors)
        best = probabilities.argmax(axis=1)
        return [(str(self.model.classes_[i]), float(p[i])) for i, p in zip(best, probabilities, strict=True)]


def cross_validated(vectors: np.ndarray, labels: list[str], folds: int = 5,
                    seed: int = 0) -> list[tuple[str, float] | None]:
    """Out-of-fold predictions for every case: what the fast judge would say about cases it never saw."""
    from sklearn.model_selection import StratifiedKFold

    predictions: list[tuple[str, float] | None] = [None] * len(labels)
    counts = Counter(labels)
    if len(counts) < 2 or min(counts.values()) < folds:
        return predictions
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(vectors, labels):
        judge = FastJudge(vectors[train], [labels[i] for i in train])
        for i, prediction in zip(test, judge.predict(vectors[test]), strict=True):
            predictions[i] = prediction
    return predictions


def cascade_table(predictions: list[tuple[str, float] | None], truth: list[str],
                  taus: list[float]) -> list[dict[str, float]]:
    """For each TAU: share of LLM calls saved and agreement with the truth when the LLM is assumed right on
    every sample it still judges (so the figure isolates what the cascade costs)."""
    rows = []
    n = len(truth)
    for tau in taus:
        decided = [i for i, p in enumerate(predictions) if p is not None and p[1] >= tau]
        wrong = sum(predictions[i][0] != truth[i] for i in decided)  # type: ignore[index]
        rows.append({"tau": tau, "saved": len(decided) / n if n else 0.0,
                     "agreement": 1 - wrong / n if n else 1.0,
                     "memory_accuracy": 1 - wrong / len(decided) if decided else float("nan")})
    return rows
