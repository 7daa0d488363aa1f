"""Agreement between judges (Fleiss' κ, Krippendorff's α) against published and hand-computed examples, and the
treated-minus-control difference with its paired cluster bootstrap."""

from __future__ import annotations

import random

import pytest

from overseer import metrics as m

# Fleiss' κ: the worked example on Wikipedia's "Fleiss' kappa" page (10 subjects, 14 raters, 5 categories): 0.210.
FLEISS_TABLE = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers × 12 units example with
# missing values: nominal α = 0.743.
KRIPPENDORFF = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
                [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
                [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
                [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]


def test_fleiss_kappa_matches_the_published_example() -> None:
    units = [[c for c, k in enumerate(row) for _ in range(k)] for row in FLEISS_TABLE]
    got = m.fleiss_kappa(units)
    assert got.value == pytest.approx(0.20993, abs=1e-5) and (got.units, got.ratings, got.raters) == (10, 140, 14)


def test_krippendorff_alpha_matches_the_published_example_with_missing_values() -> None:
    got = m.krippendorff_alpha(list(zip(*KRIPPENDORFF, strict=True)))
    assert got.value == pytest.approx(0.743, abs=5e-4)
    assert got.units == 11 and got.ratings == 40  # unit 12 has one value: not pairable


def test_both_on_a_hand_computed_two_judge_case() -> None:
    # Coincidences: a-a 2, a-b 1, b-a 1, b-b 4; n_a = 3, n_b = 5, n = 8 → α = 1 − 7·2/(64 − 9 − 25) = 8/15.
    # Fleiss: P̄ = 3/4, P̄e = (3/8)² + (5/8)² = 34/64 → κ = (3/4 − 34/64)/(30/64) = 7/15.
    units = [["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]
    assert m.krippendorff_alpha(units).value == pytest.approx(8 / 15)
    assert m.fleiss_kappa(units).value == pytest.approx(7 / 15)
    assert m.krippendorff_alpha([["a", "a"], ["b", "b"]]).value == pytest.approx(1.0)


def test_fleiss_leaves_out_incomplete_units_that_alpha_keeps() -> None:
    units: list[list[str | None]] = [["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"], ["a", None]]
    assert m.fleiss_kappa(units).units == 4 and m.fleiss_kappa(units).value == pytest.approx(7 / 15)
    assert m.krippendorff_alpha(units).units == 4  # the one-label unit is not pairable either


@pytest.mark.parametrize(("units", "reason"), [
    ([["a"], ["b"]], "1 judge(s): agreement between judges needs at least two"),
    ([["a", "a"], ["a", "a"]], "every label is a: with a single category"),
    ([["a", None], [None, "b"]], "no sample was labelled by two or more judges"),
    ([], "0 judge(s)"),
])
def test_undefined_with_a_reason(units: list[list[str | None]], reason: str) -> None:
    for measure in (m.fleiss_kappa, m.krippendorff_alpha):
        got = measure(units)
        assert got.value is None and reason in (got.undefined or "") and f"{got:.2f}".startswith("undefined (")


def test_ragged_units_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per rater"):
        m.krippendorff_alpha([["a", "b"], ["a"]])


def heterogeneous(seed: int) -> tuple[list[bool], list[bool], list[int]]:
    """20 questions with very different base rates; the treatment adds 0.1 to each."""
    rng = random.Random(seed)
    treated, control, keys = [], [], []
    for q in range(20):
        base = rng.choice([0.05, 0.3, 0.6])
        for _ in range(50):
            keys.append(q)
            treated.append(rng.random() < base + 0.1)
            control.append(rng.random() < base)
    return treated, control, keys


def test_pairing_by_question_narrows_the_difference_interval() -> None:
    treated, control, keys = heterogeneous(1)
    paired = m.rate_difference(treated, control, keys, keys)
    unpaired = m.rate_difference(treated, control, keys, [k + 100 for k in keys])
    assert paired.point == unpaired.point == pytest.approx(sum(treated) / 1000 - sum(control) / 1000)
    assert paired.paired == 20 and unpaired.paired == 0
    assert paired.low is not None and paired.high is not None and unpaired.low is not None
    assert unpaired.high is not None
    assert paired.low > 0 and unpaired.low < 0  # pairing removes the between-question spread
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 2


def test_difference_at_zero_is_not_a_point_and_an_empty_side_is_undefined() -> None:
    zero = m.rate_difference([False] * 300, [False] * 300)
    assert zero.point == 0 and zero.low is not None and zero.high is not None
    assert zero.low < 0 < zero.high and "Newcombe" in zero.method
    empty = m.rate_difference([True, False], [])
    assert empty.point is None and empty.low is None and "control group has no answer" in (empty.undefined or "")


def test_newcombe_matches_his_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, Table II example (a): 56/70 − 48/80, method 10:
    # 0.0524 to 0.3339.
    low, high = m.newcombe(m.wilson(56, 70), m.wilson(48, 80))
    assert (low, high) == (pytest.approx(0.0524, abs=5e-4), pytest.approx(0.3339, abs=5e-4))
