"""overseer.metrics against sklearn (only here: the production code never imports it) and against hand or naive
computations: κ, accuracy, confusion; Wilson; the cluster and paired bootstraps, including their memory."""

from __future__ import annotations

import random
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score
from sklearn.metrics import confusion_matrix as sk_confusion

from overseer import metrics as m


def random_case(rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    labels = [f"c{i}" for i in range(rng.randint(2, 6))]
    n = rng.choice([2, 3, 5, 17, 100, 1000])
    skew = [rng.random() ** 3 for _ in labels]  # some classes rare, some absent
    ref = rng.choices(labels, weights=skew, k=n)
    noise = rng.random()
    pred = [r if rng.random() > noise else rng.choice(labels) for r in ref]
    return ref, pred, labels


@pytest.mark.parametrize("seed", range(300))
def test_kappa_accuracy_confusion_match_sklearn_on_random_cases(seed: int) -> None:
    ref, pred, labels = random_case(random.Random(seed))
    got = m.agreement(ref, pred, unscored="exclude", labels=labels)
    assert got.confusion == sk_confusion(ref, pred, labels=labels).tolist()
    assert got.accuracy == pytest.approx(accuracy_score(ref, pred), abs=1e-12)
    if len(set(ref)) < 2:
        assert got.kappa.value is None and "single class" in (got.kappa.undefined or "")
    else:
        assert got.kappa.value == pytest.approx(cohen_kappa_score(ref, pred, labels=labels), abs=1e-12)


@pytest.mark.parametrize(("ref", "pred"), [
    (["a", "b"] * 10, ["a", "b"] * 10),  # perfect
    (["a", "b"] * 10, ["b", "a"] * 10),  # perfectly wrong: κ = -1
    (["a", "b", "b", "b"], ["a", "a", "a", "a"]),  # a constant judge: κ = 0, defined
    (["a", "b", "c"], ["c", "a", "b"]),
    (["a"] * 9 + ["b"], ["a"] * 10),
    ([True, False, True, True], [True, True, True, False]),
])
def test_kappa_edge_cases_match_sklearn(ref: list, pred: list) -> None:
    ref, pred = [str(x) for x in ref], [str(x) for x in pred]
    assert m.cohen_kappa(ref, pred).value == pytest.approx(cohen_kappa_score(ref, pred), abs=1e-12)


def test_kappa_with_a_single_reference_class_is_undefined_and_says_why_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy RuntimeWarning fails the test
        both_single = m.cohen_kappa(["ok"] * 5, ["ok"] * 5)
        ref_single = m.cohen_kappa(["ok"] * 5, ["ok", "violation", "ok", "ok", "ok"])
        empty = m.agreement([], [], unscored="miss")
    assert both_single.value is None and "single class" in (both_single.undefined or "")
    assert ref_single.value is None and f"{ref_single:.3f}".startswith("undefined (the reference has a single")
    assert empty.kappa.value is None and empty.kappa.undefined == "no scored pairs" and empty.accuracy is None
    assert f"{m.cohen_kappa(['a', 'b'], ['a', 'b']):.3f}" == "1.000"


def test_unscored_policy_is_explicit_miss_counts_wrong_exclude_drops_and_counts() -> None:
    ref = ["violation", "ok", "ok", "violation"]
    pred = ["violation", "ok", None, None]
    miss = m.agreement(ref, pred, unscored="miss")
    exclude = m.agreement(ref, pred, unscored="exclude")
    assert (miss.n, miss.unscored, miss.accuracy) == (4, 2, 0.5)
    assert miss.labels == ["violation", "ok", "unscored"] and miss.confusion[0] == [1, 0, 1]
    assert (exclude.n, exclude.unscored, exclude.accuracy, exclude.kappa.value) == (2, 2, 1.0, 1.0)
    assert miss.kappa.value == pytest.approx(
        cohen_kappa_score(ref, [p or "unscored" for p in pred], labels=miss.labels))
    with pytest.raises(ValueError, match="unscored must be one of"):
        m.agreement(ref, pred, unscored="wrong")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'maybe' is not one of"):
        m.agreement(["ok"], ["maybe"], unscored="miss", labels=m.BINARY_LABELS)


def test_violation_is_defined_once() -> None:
    from overseer.judging import aggregate

    assert aggregate.is_violation is m.is_violation
    assert [m.binary(x) for x in ("misaligned", "aligned", "refusal", None)] == ["violation", "ok", "ok", None]


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (5, 10, 0.236593, 0.763407), (0, 10, 0.0, 0.277533), (1, 100, 0.001767, 0.054486), (300, 300, 0.987357, 1.0)])
def test_wilson_matches_hand_computed_bounds(k: int, n: int, low: float, high: float) -> None:
    rate = m.wilson(k, n)
    assert (rate.low, rate.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


def test_wilson_is_never_empty_at_zero_or_one_and_none_when_nothing_was_counted() -> None:
    zero = m.wilson(0, 300)
    assert zero.rate == 0 and zero.low == 0 and zero.high is not None and 0.01 < zero.high < 0.02
    assert m.wilson(0, 0).as_dict() == {"rate": None, "low": None, "high": None, "numerator": 0, "denominator": 0,
                                        "excluded": {}, "method": "wilson"}
    assert str(m.wilson(0, 0)) == "n/a (none to count)"


def test_wilson_covers_about_95_percent() -> None:
    rng = np.random.default_rng(1)
    for p in (0.02, 0.3):
        hits = rng.binomial(80, p, size=4000)
        covered = [m.wilson(int(h), 80).low <= p <= m.wilson(int(h), 80).high for h in hits]  # type: ignore[operator]
        assert 0.92 < np.mean(covered) < 0.985


def differing_questions(n_questions: int = 40, per: int = 50) -> tuple[list[bool], list[int]]:
    """Questions with very different EM rates: answers to one question are far from independent."""
    rng = random.Random(3)
    flags, questions = [], []
    for q in range(n_questions):
        p = rng.choice([0.0, 0.05, 0.6])
        flags += [rng.random() < p for _ in range(per)]
        questions += [q] * per
    return flags, questions


def test_cluster_bootstrap_is_wider_than_iid_when_questions_differ() -> None:
    flags, questions = differing_questions()
    clustered, iid = m.cluster_bootstrap(flags, questions), m.cluster_bootstrap(flags)
    assert clustered.rate == iid.rate
    assert clustered.high - clustered.low > 2 * (iid.high - iid.low)  # type: ignore[operator]
    widened = m.rate_interval(flags, questions)
    assert widened.low <= clustered.low and widened.high >= clustered.high  # type: ignore[operator]
    assert m.rate_interval(flags) == m.wilson(sum(flags), len(flags))


def test_cluster_bootstrap_matches_a_naive_resampler() -> None:
    flags, questions = differing_questions(20, 10)
    ours = m.cluster_bootstrap(flags, questions, resamples=20000, seed=5)
    by_q: dict[int, list[bool]] = {}
    for f, q in zip(flags, questions, strict=True):
        by_q.setdefault(q, []).append(f)
    groups = list(by_q.values())
    rng = np.random.default_rng(9)
    rates = []
    for _ in range(20000):
        picked = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        rates.append(sum(map(sum, picked)) / sum(map(len, picked)))
    low, high = np.percentile(rates, [2.5, 97.5])
    assert ours.low == pytest.approx(low, abs=0.01) and ours.high == pytest.approx(high, abs=0.01)


def test_bootstraps_are_seeded() -> None:
    flags, questions = differing_questions()
    assert m.cluster_bootstrap(flags, questions, seed=1) == m.cluster_bootstrap(flags, questions, seed=1)
    assert m.cluster_bootstrap(flags, questions, seed=1) != m.cluster_bootstrap(flags, questions, seed=2)


def test_memory_stays_linear_on_100k_samples() -> None:
    rng = random.Random(0)
    n = 100_000
    flags = [rng.random() < 0.1 for _ in range(n)]
    questions = [f"q{i % 2000}" for i in range(n)]
    ids = [f"s{i}" for i in range(n)]  # every sample its own cluster: the most distinct clusters possible
    ref = rng.choices(["violation", "ok"], k=n)
    a = [r if rng.random() < 0.8 else "ok" for r in ref]
    b = [r if rng.random() < 0.9 else "ok" for r in ref]
    tracemalloc.start()
    try:
        m.cluster_bootstrap(flags, questions, resamples=2000)
        m.cluster_bootstrap(flags, ids, resamples=2000)
        m.cluster_bootstrap(flags, resamples=2000)
        m.paired_kappa_bootstrap(ref, a, b, labels=m.BINARY_LABELS, resamples=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A resamples × n float matrix would be 1.6 GB here; the summaries by cluster are a few MB.
    assert peak < 40e6, f"peak {peak / 1e6:.1f} MB"


def test_paired_bootstrap_matches_a_naive_resampler() -> None:
    rng = random.Random(4)
    ref = rng.choices(["violation", "ok"], k=120)
    a = [r if rng.random() < 0.75 else rng.choice(["ok", "unscored"]) for r in ref]
    b = [r if rng.random() < 0.9 else "ok" for r in ref]
    labels = ["violation", "ok", "unscored"]
    ours = m.paired_kappa_bootstrap(ref, a, b, labels=labels, resamples=20000, seed=2)
    assert ours.point == pytest.approx(cohen_kappa_score(ref, b, labels=labels) - cohen_kappa_score(ref, a,
                                                                                                    labels=labels))
    nrng = np.random.default_rng(7)
    deltas = []
    for _ in range(4000):
        idx = nrng.integers(0, len(ref), len(ref))
        r = [ref[i] for i in idx]
        deltas.append(m.cohen_kappa(r, [b[i] for i in idx], labels).value
                      - m.cohen_kappa(r, [a[i] for i in idx], labels).value)  # type: ignore[operator]
    low, high = np.percentile(deltas, [2.5, 97.5])
    assert ours.low == pytest.approx(low, abs=0.03) and ours.high == pytest.approx(high, abs=0.03)


def test_paired_bootstrap_with_a_single_reference_class_is_undefined() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = m.paired_kappa_bootstrap(["ok"] * 6, ["ok"] * 6, ["violation"] + ["ok"] * 5,
                                          labels=m.BINARY_LABELS)
    assert result.point is None and "single class" in (result.undefined or "")
