"""The memory fast judge on JailbreakBench behaviours it never saw: trained on behaviours 0-24 and tested on 25-49,
then the reverse. Beside it, in the same run and on the same rows: a plain TF-IDF word 1-2-gram logistic regression
(the baseline to beat), the previous fast judge (logistic regression on the embedding of the response's first 150
characters) and Llama Guard 1's agreement with the JBB judge where the data has it.

    python bench/fast_judge.py
Prints one line per split, then one line of key=value figures (kappa, accuracy, expected calibration error)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from overseer.embeddings import make_embedder
from overseer.memory.fast_judge import FastJudge, Prediction, expected_calibration_error, featurize, response_head
from overseer.metrics import cohen_kappa

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "jbb_calibration.jsonl"


def label(jailbroken: bool) -> str:
    return "misaligned" if jailbroken else "aligned"


def kappa(truth: list[str], predictions: list[Prediction | None]) -> float:
    value = cohen_kappa(truth, [p[0] if p else "unscored" for p in predictions]).value
    return float("nan") if value is None else value


def accuracy(truth: list[str], predictions: list[Prediction | None]) -> float:
    return float(np.mean([p is not None and p[0] == t for p, t in zip(predictions, truth, strict=True)]))


def logistic(train_x, train_y, test_x) -> list[Prediction | None]:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=4.0, max_iter=5000).fit(train_x, train_y)
    probabilities = model.predict_proba(test_x)
    return [(str(model.classes_[p.argmax()]), float(p.max())) for p in probabilities]


def tfidf_baseline(rows, train, test, labels) -> list[Prediction | None]:  # type: ignore[no-untyped-def]
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform([rows[i]["response"] for i in train])
    return logistic(x_train, [labels[i] for i in train], vectorizer.transform([rows[i]["response"] for i in test]))


def main() -> None:
    rows = [json.loads(line) for line in DATA.open()]
    labels = [label(r["jailbroken"]) for r in rows]
    embedder = make_embedder("wordllama")
    embedder.embed(["load the model outside the timing"])
    started = time.perf_counter()
    # The question is the prompt the target model was given (what a user's input file carries as `prompt`).
    features = featurize(embedder.embed, [r["prompt"] for r in rows], [r["response"] for r in rows])
    heads = embedder.embed([response_head(r["response"]) for r in rows])
    featurize_s = time.perf_counter() - started
    low = [i for i, r in enumerate(rows) if r["behavior_index"] < 25]
    high = [i for i, r in enumerate(rows) if r["behavior_index"] >= 25]
    figures: dict[str, float] = {}
    for prefix, train, test in (("", low, high), ("reverse_", high, low)):
        truth = [labels[i] for i in test]
        started = time.perf_counter()
        judge = FastJudge(features.subset(train), [labels[i] for i in train])
        train_s = time.perf_counter() - started
        ours = judge.predict(features.subset(test))
        tfidf = tfidf_baseline(rows, train, test, labels)
        previous = logistic(heads[train], [labels[i] for i in train], heads[test])
        guarded = [i for i in test if rows[i].get("jailbroken_llama_guard1") is not None]
        guard = cohen_kappa([labels[i] for i in guarded],
                            [label(rows[i]["jailbroken_llama_guard1"]) for i in guarded]).value
        figures |= {f"{prefix}kappa": kappa(truth, ours), f"{prefix}accuracy": accuracy(truth, ours),
                    f"{prefix}ece": expected_calibration_error(ours, truth),
                    f"{prefix}tfidf_kappa": kappa(truth, tfidf),
                    f"{prefix}tfidf_ece": expected_calibration_error(tfidf, truth),
                    f"{prefix}previous_kappa": kappa(truth, previous),
                    f"{prefix}previous_ece": expected_calibration_error(previous, truth),
                    f"{prefix}llama_guard_kappa": float("nan") if guard is None else guard}
        print(f"{'reverse: train 25-49, test 0-24' if prefix else 'train 0-24, test 25-49'}: {judge.name}, "
              f"{len(test)} test rows, trained in {train_s:.2f}s; Llama Guard 1 on {len(guarded)} of them")
    print(" ".join(f"{k}={v:.3f}" for k, v in figures.items()) + f" featurize_docs_per_s={len(rows) / featurize_s:.0f}")


if __name__ == "__main__":
    main()
