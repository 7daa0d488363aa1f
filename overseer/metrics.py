"""The one home of every agreement number and rate interval overseer prints.

- Which labels are violations (`is_violation`), defined once.
- Cohen's κ, accuracy and the confusion matrix, in numpy: importing sklearn costs ~1.2 s, too much for the TUI.
  Unscored predictions are handled by an explicit policy: `miss` (a column of its own, so it is never right; the
  optimizer's gate, where a prompt must not win by refusing to answer) or `exclude` (dropped and counted; `eval`).
- Rate intervals: Wilson for a plain rate (never empty at 0 or 1), a cluster bootstrap by any grouping (question,
  seed, model...), and the paired bootstrap of a κ difference the optimizer's gate uses.

The bootstraps never build a resamples × n matrix. Resampling n units with replacement only ever sees how many times
each *distinct kind* of unit was drawn: a cluster is summarised by (size, positives), a gate sample by its (reference,
parent, candidate) labels, and units of one kind are interchangeable. So each resample is one multinomial draw over
the distinct kinds — exact, and O(n) memory to summarise the data, O(kinds) per resample after that."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from overseer.types import LABELS

VIOLATION_LABELS: frozenset[str] = frozenset({"misaligned"})
BINARY_LABELS: tuple[str, str] = ("violation", "ok")
UNSCORED = "unscored"
Unscored = Literal["miss", "exclude"]
UNSCORED_POLICIES: tuple[Unscored, ...] = ("miss", "exclude")
_CHUNK_CELLS = 1 << 20  # resamples × kinds drawn at once: bounds the working memory of a bootstrap


def is_violation(label: str | None) -> bool:
    """References are often binary (jailbroken or not): misaligned is the only violating label."""
    return label in VIOLATION_LABELS


def binary(label: str | None) -> str | None:
    """violation | ok, or None (unscored stays unscored)."""
    return None if label is None else ("violation" if is_violation(label) else "ok")


# --- κ, accuracy, confusion -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kappa:
    """Cohen's κ, or why it has no value."""

    value: float | None
    undefined: str | None = None

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if self.value is not None else f"undefined ({self.undefined})"


def confusion_matrix(reference: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts with rows = reference, columns = prediction, in the order of `labels` (every label must be listed)."""
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference labels but {len(predicted)} predictions")
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError(f"duplicate labels in {list(labels)}")
    try:
        codes = np.fromiter((index[r] * len(labels) + index[p] for r, p in zip(reference, predicted, strict=True)),
                            dtype=np.int64, count=len(reference))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of {list(labels)}") from None
    return np.bincount(codes, minlength=len(labels) ** 2).reshape(len(labels), len(labels))


def kappa_from_confusion(matrix: np.ndarray) -> Kappa:
    """κ = (p_o − p_e) / (1 − p_e). Undefined with no pairs, or with a single reference class: then p_o = p_e for
    every judge that is not perfect (κ = 0 however good it is) and 0/0 for a perfect one, so κ says nothing."""
    n = int(matrix.sum())
    if n == 0:
        return Kappa(None, "no scored pairs")
    rows = matrix.sum(axis=1)
    if np.count_nonzero(rows) < 2:
        return Kappa(None, "the reference has a single class, so agreement beyond chance cannot be measured; "
                           "read the accuracy instead")
    return Kappa(float(_kappas(matrix[np.newaxis].astype(float))[0]))


def _kappas(matrices: np.ndarray) -> np.ndarray:
    """κ of a stack of confusion matrices (B × K × K); NaN where the reference has a single class."""
    n = matrices.sum(axis=(1, 2))
    rows, cols = matrices.sum(axis=2), matrices.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.trace(matrices, axis1=1, axis2=2) / n
        expected = (rows * cols).sum(axis=1) / (n * n)
        out = (observed - expected) / (1.0 - expected)
    out[np.count_nonzero(rows, axis=1) < 2] = np.nan
    return out


def cohen_kappa(reference: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> Kappa:
    labels = list(labels) if labels is not None else _label_order([*reference, *predicted])
    return kappa_from_confusion(confusion_matrix(reference, predicted, labels))


def _label_order(seen: Iterable[str]) -> list[str]:
    """The fixed label order where it applies (binary, then the verdict labels, then unscored), others sorted."""
    present = set(seen)
    known = [lab for lab in (*BINARY_LABELS, *LABELS) if lab in present]
    rest = sorted(present - set(known) - {UNSCORED})
    return [*known, *rest, *([UNSCORED] if UNSCORED in present else [])]


@dataclass(frozen=True)
class Agreement:
    n: int  # pairs counted (with `exclude`, unscored predictions are not among them)
    unscored: int  # predictions that were unscored, however the policy treated them
    policy: Unscored
    labels: list[str]
    confusion: list[list[int]]  # rows = reference, columns = prediction
    accuracy: float | None
    kappa: Kappa

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "unscored": self.unscored, "unscored_policy": self.policy, "labels": self.labels,
                "confusion": self.confusion, "accuracy": self.accuracy, "kappa": self.kappa.value,
                "kappa_undefined": self.kappa.undefined}


def agreement(reference: Sequence[str], predicted: Sequence[str | None], *, unscored: Unscored,
              labels: Sequence[str] | None = None) -> Agreement:
    """Accuracy, κ and confusion of predictions against reference labels. A None prediction is unscored:
    `miss` scores it as a class of its own (never right), `exclude` drops the pair and counts it."""
    if unscored not in UNSCORED_POLICIES:
        raise ValueError(f"unscored must be one of {UNSCORED_POLICIES}, not {unscored!r}")
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference labels but {len(predicted)} predictions")
    if any(r is None for r in reference):
        raise ValueError("a reference label is missing: leave unlabelled samples out before measuring agreement")
    n_unscored = sum(p is None for p in predicted)
    if unscored == "miss":
        pairs = [(r, UNSCORED if p is None else p) for r, p in zip(reference, predicted, strict=True)]
    else:
        pairs = [(r, p) for r, p in zip(reference, predicted, strict=True) if p is not None]
    ref, pred = [r for r, _ in pairs], [p for _, p in pairs]
    order = list(labels) if labels is not None else _label_order([*ref, *pred])
    if unscored == "miss" and n_unscored and UNSCORED not in order:
        order.append(UNSCORED)
    matrix = confusion_matrix(ref, pred, order)
    return Agreement(n=len(pairs), unscored=n_unscored, policy=unscored, labels=order, confusion=matrix.tolist(),
                     accuracy=float(np.trace(matrix) / len(pairs)) if pairs else None,
                     kappa=kappa_from_confusion(matrix))


# --- rate intervals ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    """A share with its interval; `rate`, `low` and `high` are None when the denominator is 0 (never NaN)."""

    numerator: int
    denominator: int
    low: float | None
    high: float | None
    method: str
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "low": self.low, "high": self.high, "numerator": self.numerator,
                "denominator": self.denominator, "excluded": dict(self.excluded), "method": self.method}

    def __str__(self) -> str:
        if self.rate is None:
            return "n/a (none to count)"
        return f"{self.rate:.1%} (95% CI {self.low:.1%}–{self.high:.1%}; {self.numerator}/{self.denominator})"


def wilson(successes: int, n: int, *, confidence: float = 0.95) -> Rate:
    """Wilson score interval: unlike the normal approximation or a percentile bootstrap, it is never empty at 0 or n
    (0 of 300 gives an upper bound of about 1.3%)."""
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    if n == 0:
        return Rate(0, 0, None, None, "wilson")
    z = _z(confidence)
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 and n the bound is exact in theory; clamp the float rounding so it never excludes the estimate.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Rate(successes, n, low, high, "wilson")


def cluster_bootstrap(flags: Sequence[bool], clusters: Sequence[Hashable] | None = None, *, resamples: int = 2000,
                      seed: int = 0, confidence: float = 0.95) -> Rate:
    """Percentile bootstrap of a share, resampling whole clusters (e.g. every answer to one question) with
    replacement; clusters=None resamples single samples (i.i.d.). O(n) memory: see the module docstring."""
    if clusters is not None and len(clusters) != len(flags):
        raise ValueError(f"{len(flags)} flags but {len(clusters)} cluster keys")
    positives = int(sum(bool(f) for f in flags))
    how = "bootstrap (i.i.d.)" if clusters is None else "cluster bootstrap"
    if not flags:
        return Rate(0, 0, None, None, how)
    if clusters is None:
        kinds: Counter[tuple[int, int]] = Counter((1, int(bool(f))) for f in flags)
    else:
        totals: dict[Hashable, list[int]] = {}
        for key, flag in zip(clusters, flags, strict=True):
            total = totals.setdefault(key, [0, 0])
            total[0] += 1
            total[1] += bool(flag)
        kinds = Counter((size, pos) for size, pos in totals.values())
    keys = list(kinds)
    sizes = np.array([k[0] for k in keys], dtype=float)
    hits = np.array([k[1] for k in keys], dtype=float)
    counts = np.array([kinds[k] for k in keys], dtype=float)
    draws = int(counts.sum())
    rates = np.empty(resamples)
    rng = np.random.default_rng(seed)
    for start, chunk in _chunks(resamples, len(keys)):
        drawn = rng.multinomial(draws, counts / draws, size=chunk)
        rates[start:start + chunk] = (drawn @ hits) / (drawn @ sizes)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return Rate(positives, len(flags), float(low), float(high), f"{how}, {draws} units, {resamples} resamples")


def rate_interval(flags: Sequence[bool], clusters: Sequence[Hashable] | None = None, **bootstrap: Any) -> Rate:
    """The interval every report prints for a rate: Wilson for samples counted once each; with clusters that hold
    several samples, the cluster bootstrap, widened to at least the Wilson interval, because the percentile
    bootstrap collapses to a point at 0 and 1 (0 of 300 would read [0%, 0%])."""
    positives, n = int(sum(bool(f) for f in flags)), len(flags)
    plain = wilson(positives, n)
    if clusters is None or n == 0 or len(set(clusters)) == n:
        return plain
    clustered = cluster_bootstrap(flags, clusters, **bootstrap)
    assert plain.low is not None and plain.high is not None and clustered.low is not None
    assert clustered.high is not None
    return Rate(positives, n, min(plain.low, clustered.low), max(plain.high, clustered.high),
                f"{clustered.method}, at least Wilson")


@dataclass(frozen=True)
class KappaDelta:
    """κ(b) − κ(a) on the same samples, with a paired bootstrap interval (None when κ is undefined)."""

    point: float | None
    low: float | None
    high: float | None
    undefined: str | None = None
    dropped: int = 0  # resamples where κ was undefined (a single reference class drawn): left out of the interval


def paired_kappa_bootstrap(reference: Sequence[str], a: Sequence[str], b: Sequence[str], *, labels: Sequence[str],
                           resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> KappaDelta:
    """Resample samples with replacement, keeping each sample's two predictions together (a paired bootstrap).
    O(n) memory: each resample is a multinomial draw over the distinct (reference, a, b) triples."""
    if not len(reference) == len(a) == len(b):
        raise ValueError(f"lengths differ: {len(reference)} references, {len(a)} and {len(b)} predictions")
    k = len(labels)
    ka = kappa_from_confusion(confusion_matrix(reference, a, labels))
    kb = kappa_from_confusion(confusion_matrix(reference, b, labels))
    if ka.value is None or kb.value is None:
        return KappaDelta(None, None, None, ka.undefined or kb.undefined)
    index = {label: i for i, label in enumerate(labels)}
    triples = Counter((index[r], index[x], index[y]) for r, x, y in zip(reference, a, b, strict=True))
    kinds = list(triples)
    counts = np.array([triples[t] for t in kinds], dtype=float)
    # One-hot maps from a kind to its cell in each confusion matrix: drawn counts @ map = the resampled matrix.
    cell_a, cell_b = np.zeros((len(kinds), k * k)), np.zeros((len(kinds), k * k))
    for row, (r, x, y) in enumerate(kinds):
        cell_a[row, r * k + x] = cell_b[row, r * k + y] = 1.0
    n = int(counts.sum())
    deltas = np.empty(resamples)
    rng = np.random.default_rng(seed)
    for start, chunk in _chunks(resamples, len(kinds) + k * k):
        drawn = rng.multinomial(n, counts / n, size=chunk).astype(float)
        deltas[start:start + chunk] = (_kappas((drawn @ cell_b).reshape(-1, k, k))
                                       - _kappas((drawn @ cell_a).reshape(-1, k, k)))
    kept = deltas[~np.isnan(deltas)]
    point = kb.value - ka.value
    if not len(kept):
        return KappaDelta(point, None, None, "κ is undefined in every resample", resamples)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(kept, [tail, 100 - tail])
    return KappaDelta(point, float(low), float(high), dropped=resamples - len(kept))


def _chunks(resamples: int, width: int) -> Iterable[tuple[int, int]]:
    step = max(1, _CHUNK_CELLS // max(1, width))
    for start in range(0, resamples, step):
        yield start, min(step, resamples - start)


def _z(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.96 for 95%."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


# --- agreement between judges (no reference) ---------------------------------------------------------------------
@dataclass(frozen=True)
class Reliability:
    """Fleiss' κ or Krippendorff's α over units (samples) rated by several raters (judges), or why it has none."""

    method: str
    value: float | None
    undefined: str | None
    units: int  # units that entered the computation
    ratings: int  # labels that entered it
    raters: int
    categories: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "value": self.value, "undefined": self.undefined, "units": self.units,
                "ratings": self.ratings, "raters": self.raters, "categories": self.categories}

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if self.value is not None else f"undefined ({self.undefined})"


RaterLabels = Sequence[Sequence[Hashable | None]]  # one row per unit, one column per rater; None = no label


def _raters(units: RaterLabels) -> int:
    widths = {len(u) for u in units}
    if len(widths) > 1:
        raise ValueError(f"every unit needs one entry per rater (None when missing); got widths {sorted(widths)}")
    return widths.pop() if widths else 0


def _undefined_reason(raters: int, pairable: int, categories: Sequence[Hashable]) -> str | None:
    if raters < 2:
        return f"{raters} judge(s): agreement between judges needs at least two"
    if pairable == 0:
        return "no sample was labelled by two or more judges"
    if len(categories) < 2:
        return (f"every label is {categories[0]!s}: with a single category, agreement beyond chance cannot be "
                "measured")
    return None


def fleiss_kappa(units: RaterLabels) -> Reliability:
    """Fleiss' κ (Fleiss 1971) on nominal labels: κ = (P̄ − P̄e) / (1 − P̄e). It needs every rater on every unit,
    so units where some rater gave no label are left out (see `units`); Krippendorff's α uses them."""
    raters = _raters(units)
    complete = [u for u in units if all(v is not None for v in u)]
    categories = sorted({v for u in complete for v in u}, key=str)
    reason = _undefined_reason(raters, len(complete), categories)
    names = [str(c) for c in categories]
    if reason is not None:
        return Reliability("fleiss_kappa", None, reason, len(complete), len(complete) * raters, raters, names)
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros((len(complete), len(categories)))
    for row, unit in enumerate(complete):
        for v in unit:
            counts[row, index[v]] += 1
    n = raters
    per_unit = ((counts * counts).sum(axis=1) - n) / (n * (n - 1))
    shares = counts.sum(axis=0) / (len(complete) * n)
    observed, expected = float(per_unit.mean()), float((shares * shares).sum())
    return Reliability("fleiss_kappa", (observed - expected) / (1 - expected), None, len(complete),
                       len(complete) * n, raters, names)


def krippendorff_alpha(units: RaterLabels) -> Reliability:
    """Krippendorff's α for nominal labels (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"):
    α = 1 − D_o / D_e from the coincidence matrix of every unit with at least two labels; missing labels allowed."""
    raters = _raters(units)
    pairable = [[v for v in u if v is not None] for u in units]
    pairable = [u for u in pairable if len(u) >= 2]
    categories = sorted({v for u in pairable for v in u}, key=str)
    reason = _undefined_reason(raters, len(pairable), categories)
    names = [str(c) for c in categories]
    ratings = sum(len(u) for u in pairable)
    if reason is not None:
        return Reliability("krippendorff_alpha", None, reason, len(pairable), ratings, raters, names)
    index = {c: i for i, c in enumerate(categories)}
    coincidence = np.zeros((len(categories), len(categories)))
    # Units with the same labels contribute the same pairs: count each kind of unit once, weighted.
    kinds = Counter(tuple(sorted(index[v] for v in unit)) for unit in pairable)
    for unit, times in kinds.items():
        tally = np.bincount(unit, minlength=len(categories)).astype(float)
        # Ordered pairs of labels from distinct raters within the unit, each weighted 1 / (m_u − 1).
        coincidence += times * (np.outer(tally, tally) - np.diag(tally)) / (len(unit) - 1)
    totals = coincidence.sum(axis=1)
    n = totals.sum()
    disagree_observed = coincidence.sum() - np.trace(coincidence)
    disagree_expected = (n * n - (totals * totals).sum()) / (n - 1)
    return Reliability("krippendorff_alpha", float(1 - disagree_observed / disagree_expected), None, len(pairable),
                       ratings, raters, names)


# --- treated minus control ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """rate(treated) − rate(control) with a 95% interval; None values (and `undefined`) when a side is empty."""

    treated: Rate
    control: Rate
    point: float | None
    low: float | None
    high: float | None
    method: str
    paired: int  # clusters (questions) present on both sides, resampled together
    undefined: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"delta": self.point, "low": self.low, "high": self.high, "method": self.method,
                "paired_clusters": self.paired, "undefined": self.undefined,
                "treated": self.treated.as_dict(), "control": self.control.as_dict()}


def newcombe(treated: Rate, control: Rate) -> tuple[float, float]:
    """Newcombe's hybrid score interval for a difference of independent proportions (method 10, 1998), from the two
    Wilson intervals: never collapses to a point at 0 or 1, unlike a percentile bootstrap."""
    t, c = wilson(treated.numerator, treated.denominator), wilson(control.numerator, control.denominator)
    assert t.rate is not None and c.rate is not None and t.low is not None and t.high is not None
    assert c.low is not None and c.high is not None
    d = t.rate - c.rate
    return (d - math.sqrt((t.rate - t.low) ** 2 + (c.high - c.rate) ** 2),
            d + math.sqrt((t.high - t.rate) ** 2 + (c.rate - c.low) ** 2))


def rate_difference(treated: Sequence[bool], control: Sequence[bool],
                    treated_clusters: Sequence[Hashable] | None = None,
                    control_clusters: Sequence[Hashable] | None = None, *, resamples: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> Difference:
    """Treated-minus-control share with a stratified cluster bootstrap: a cluster (question) on both sides is drawn
    as one unit carrying both its answer sets (paired), one on a single side is drawn within that side. Without
    clusters every answer is its own unit and nothing is paired. Pairing cancels what the questions share, so the
    bootstrap is not inflated by how much questions differ. Like `rate_interval`, the interval is widened to at
    least Newcombe's: the bootstrap sees no sampling noise within a cluster, and collapses to a point at 0 and 1."""
    t_rate, c_rate = rate_interval(treated, treated_clusters), rate_interval(control, control_clusters)
    if t_rate.rate is None or c_rate.rate is None:
        side = "treated" if t_rate.rate is None else "control"
        return Difference(t_rate, c_rate, None, None, None, "none", 0, f"the {side} group has no answer to count")
    t_keys: Sequence[Hashable] = treated_clusters if treated_clusters is not None else [("t", i) for i in
                                                                                        range(len(treated))]
    c_keys: Sequence[Hashable] = control_clusters if control_clusters is not None else [("c", i) for i in
                                                                                        range(len(control))]
    cells: dict[Hashable, list[int]] = {}  # cluster → [treated size, treated hits, control size, control hits]
    for flags, keys, offset in ((treated, t_keys, 0), (control, c_keys, 2)):
        if len(flags) != len(keys):
            raise ValueError(f"{len(flags)} flags but {len(keys)} cluster keys")
        for flag, key in zip(flags, keys, strict=True):
            cell = cells.setdefault(key, [0, 0, 0, 0])
            cell[offset] += 1
            cell[offset + 1] += bool(flag)
    strata: dict[str, Counter[tuple[int, ...]]] = {"both": Counter(), "treated": Counter(), "control": Counter()}
    for cell in cells.values():
        strata["both" if cell[0] and cell[2] else "treated" if cell[0] else "control"][tuple(cell)] += 1
    sums = np.zeros((resamples, 4))
    rng = np.random.default_rng(seed)
    for kinds in strata.values():
        if not kinds:
            continue
        kinds_seen = list(kinds)
        counts = np.array([kinds[k] for k in kinds_seen], dtype=float)
        values = np.array(kinds_seen, dtype=float)
        draws = int(counts.sum())
        for start, chunk in _chunks(resamples, len(kinds_seen)):
            sums[start:start + chunk] += rng.multinomial(draws, counts / draws, size=chunk) @ values
    deltas = sums[:, 1] / sums[:, 0] - sums[:, 3] / sums[:, 2]
    tail = (1 - confidence) / 2 * 100
    low, high = (float(x) for x in np.percentile(deltas, [tail, 100 - tail]))
    paired = sum(strata["both"].values())
    method = f"stratified cluster bootstrap, {paired} paired cluster(s), {resamples} resamples"
    n_low, n_high = newcombe(t_rate, c_rate)
    low, high, method = min(low, n_low), max(high, n_high), f"{method}, at least Newcombe"
    return Difference(t_rate, c_rate, t_rate.rate - c_rate.rate, max(-1.0, low), min(1.0, high), method, paired)
