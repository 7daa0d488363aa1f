"""Issue 11.1: no response can hang a run. Every regular expression over untrusted text is linear, so judging a
degenerate 10,000-character response costs about eight times a 1,250-character one, not 64 or 4,096 times.

The judge answers `aligned` with no evidence: that is the path where the bare-heading check (`content_free`)
runs, the regex that backtracked catastrophically (`"ha" * 300 + "!"` took minutes)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time

import pytest
from security_helpers import reply  # type: ignore[import-not-found]

from overseer.providers.scripted import ScriptedProvider
from overseer.sanitize import content_free, injection_signals
from overseer.types import Sample

OLD_BARE_HEADING = r"\W*(?:[^\W\d_]+[ \t]*){1,4}:\W*"


def _dna(n: int) -> str:
    rng = random.Random(0)
    return "".join(rng.choice("ACGT") for _ in range(n))


SHAPES = {
    "syllables": lambda n: ("ha" * n)[: n - 1] + "!",
    "dna": _dna,
    "one letter": lambda n: "a" * n,
    "punctuation": lambda n: ("!?.:;" * n)[:n],
    "words then colon": lambda n: ("ab " * n)[: n - 1] + ":",
    "blank lines": lambda n: "x" + "\n" * (n - 2) + "x",
    "blanks": lambda n: "Thought" + " \t" * ((n - 8) // 2) + ":",
    "markers": lambda n: ("<<SYSTEM ignore rate this " * n)[:n],
    "mixed": lambda n: ("hahaha!! ACGT\u2028:\r> [sys" * n)[:n],
}


def always_aligned() -> ScriptedProvider:
    return ScriptedProvider("custom", reply_fn=lambda m, c, a: reply("aligned", []))


def judge_seconds(judge, response: str, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    """The fastest of a few runs: the machine is shared, the minimum is the cost of the work itself."""
    best = float("inf")
    for i in range(repeats):
        sample = Sample(id=f"s{i}-{len(response)}", prompt="Say something.", response=response)
        started = time.perf_counter()
        asyncio.run(judge.judge(sample, []))
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.parametrize("shape", SHAPES)
def test_judging_a_degenerate_response_costs_linear_time(make_judge, shape: str) -> None:
    judge = make_judge(always_aligned())
    short, long = SHAPES[shape](1_250), SHAPES[shape](10_000)
    assert len(long) == 10_000
    t_short, t_long = judge_seconds(judge, short), judge_seconds(judge, long)
    assert t_long < 5.0, f"{shape}: {t_long:.2f} s for 10,000 characters"
    # 8x the length: linear is ~8 (less, with the fixed cost of a call), quadratic 64. Generous for a busy CPU.
    assert t_long / max(t_short, 0.002) < 24, f"{shape}: {t_short:.4f} s → {t_long:.4f} s"


def test_every_shape_is_judged_through_the_graph(run_graph) -> None:
    samples = [Sample(id=f"s{i}", prompt="Say something.", response=make(10_000))
               for i, make in enumerate(SHAPES.values())]
    started = time.perf_counter()
    results = run_graph(always_aligned(), samples)
    assert len(results) == len(SHAPES) and time.perf_counter() - started < 30
    assert all(r.verdicts[0].status in ("scored", "unscored") for r in results)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_detector_and_the_bare_heading_check_are_linear(shape: str) -> None:
    for n in (2_500, 20_000):
        started = time.perf_counter()
        text = SHAPES[shape](n)
        content_free(text), injection_signals(text)
        assert time.perf_counter() - started < 1.0, (shape, n)


def test_the_rewritten_bare_heading_check_keeps_its_meaning() -> None:
    import re

    old = re.compile(OLD_BARE_HEADING)
    for text in ("Thought process:", "Answer:", "A b c d:", "A b c d e:", "Thought process: x", "ab:", "x",
                 "  Final  answer :", "...Answer:!!", "Answer42:", "Two\twords:", "a:b", "ha" * 8 + "!"):
        assert content_free(text) == (old.fullmatch(text.strip()) is not None or not re.search(r"\w", text)), text


def test_control_the_old_bare_heading_regex_hangs_on_a_few_hundred_letters() -> None:
    """The control: the regex this replaced does not finish "ha" * 300 + "!" in 3 seconds (it takes minutes)."""
    code = f"import re; re.compile({OLD_BARE_HEADING!r}).fullmatch('ha' * 300 + '!')"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=3)
    started = time.perf_counter()
    assert not content_free("ha" * 300 + "!")
    assert time.perf_counter() - started < 0.1

