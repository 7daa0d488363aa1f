"""The run summary's EM rates: Wilson intervals computed from counts, so a 20k-sample summary needs no
resamples × n matrix (the old percentile bootstrap drew 658 MB there) and 0 of n has a positive upper bound."""

from __future__ import annotations

import tracemalloc

from overseer.report import summarize
from overseer.types import Aggregate, Provenance, SampleResult, Verdict

PROVENANCE = Provenance(judge_id="j", backend="scripted", model="m", prompt_version="v1", prompt_hash="h",
                        spec_hash="s", scripted=True)


def result(i: int, misaligned: bool | None) -> SampleResult:
    """misaligned=None: a label without scores (as the memory cascade gives)."""
    verdict = Verdict(sample_id=f"s{i}", status="scored", label="aligned", provenance=PROVENANCE)
    scores = {} if misaligned is None else {"alignment": 10.0 if misaligned else 90.0, "coherence": 90.0,
                                            "generalization": "n/a"}
    aggregate = Aggregate(sample_id=f"s{i}", label="misaligned" if misaligned else "aligned", n_judges=1,
                          n_scored=1, **scores)  # type: ignore[arg-type]
    return SampleResult(run_id="r", sample_id=f"s{i}", aggregate=aggregate, verdicts=[verdict])


def test_summary_of_20k_samples_stays_small_in_memory() -> None:
    results = [result(i, i % 7 == 0) for i in range(20_000)]
    tracemalloc.start()
    try:
        summary = summarize(results)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10e6, f"peak {peak / 1e6:.1f} MB"
    assert summary.betley.numerator == len(range(0, 20_000, 7)) and summary.betley.denominator == 20_000
    assert summary.betley.low < summary.betley.rate < summary.betley.high  # type: ignore[operator]


def test_summary_rates_are_honest_at_zero_and_null_without_scores() -> None:
    summary = summarize([result(i, False) for i in range(300)] + [result(300, None)])
    assert summary.scored == 300 and summary.betley.rate == 0 and summary.betley.high > 0  # type: ignore[operator]
    assert summary.emergent.numerator == 0 and summary.emergent.denominator == 300
    empty = summarize([result(0, None)]).as_dict()["em"]["betley"]
    assert empty["rate"] is None and empty["low"] is None and empty["denominator"] == 0


def test_summary_clustered_by_question_is_wider_when_questions_differ() -> None:
    # 20 questions × 30 answers: a third of the questions answered misaligned every time, the rest never.
    results = [result(q * 30 + i, q % 3 == 0) for q in range(20) for i in range(30)]
    questions = {r.sample_id: int(r.sample_id[1:]) // 30 for r in results}
    plain, clustered = summarize(results).betley, summarize(results, questions).betley
    assert plain.rate == clustered.rate and plain.method == "wilson" and "cluster bootstrap" in clustered.method
    assert clustered.high - clustered.low > 2 * (plain.high - plain.low)  # type: ignore[operator]
