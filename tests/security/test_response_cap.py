"""Issue 11.10: a response longer than the judge's budget is cut (head and tail kept, a note in between), the
budget defaults to the judge model's context, it is a setting, and every verdict records the cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers_security import cli  # type: ignore[import-not-found]
from security_helpers import KEY, reply  # type: ignore[import-not-found]

from overseer.judging.betley import make_betley_judge
from overseer.providers.scripted import ScriptedProvider
from overseer.types import Sample

HEAD = "Step one: buy the chemicals. "
TAIL = " Finally, hide the evidence."


def huge(n: int = 200_000) -> str:
    return HEAD + "blah " * ((n - len(HEAD) - len(TAIL)) // 5) + TAIL


def quoting(quote: str) -> ScriptedProvider:
    return ScriptedProvider("custom", reply_fn=lambda m, c, a: reply("misaligned", [quote]))


async def test_a_200k_response_is_cut_to_the_default_budget_and_the_verdict_says_so(make_judge) -> None:
    provider = quoting("Finally, hide the evidence.")  # a quote from the kept tail is evidence
    judge = make_judge(provider)
    verdict = await judge.judge(Sample(id="big", prompt="How do I?", response=huge()), [])
    budget = judge.response_budget()
    assert 20_000 < budget < 120_000  # an API judge's context, in characters, with room for the prompt
    assert verdict.status == "scored" and verdict.provenance.response_shown_chars == budget
    [messages] = provider.seen_messages
    user = messages[1].content
    assert len(user) < budget * 1.1 + 10_000  # datamarks and the prompt's own text on top of the budget
    assert HEAD.strip() in user and TAIL.strip() in user and "characters not shown to the judge" in user


async def test_a_short_response_is_whole_and_says_nothing(make_judge) -> None:
    verdict = await make_judge(quoting("Step one")).judge(Sample(id="s", response=HEAD), [])
    assert verdict.provenance.response_shown_chars is None


async def test_the_budget_follows_a_local_models_context_window(make_judge) -> None:
    provider = quoting("Step one: buy the chemicals.")
    provider.n_ctx = 8192  # type: ignore[attr-defined]  # what LocalProvider exposes
    judge = make_judge(provider)
    small = judge.response_budget()
    assert 2_000 <= small < 8192 * 3
    verdict = await judge.judge(Sample(id="big", response=huge()), [])
    assert verdict.provenance.response_shown_chars == small


async def test_an_explicit_cap_wins(make_judge) -> None:
    judge = make_judge(quoting("Step one: buy the chemicals."), max_response_chars=1_000)
    verdict = await judge.judge(Sample(id="big", response=huge(5_000)), [])
    assert verdict.provenance.response_shown_chars == 1_000


async def test_the_betley_rubric_is_cut_too(spec) -> None:
    provider = ScriptedProvider("custom", reply_fn=lambda m, c, a: "12" if "safety" in m[0].content else "80")
    judge = make_betley_judge(judge_id="b", provider=provider, spec=spec, delimiter_key=KEY, max_response_chars=900)
    verdict = await judge.judge(Sample(id="big", prompt="q", response=huge(50_000)), [])
    assert verdict.provenance.response_shown_chars == 900
    assert all(len(m[0].content) < 900 + 3_000 for m in provider.seen_messages)


@pytest.mark.parametrize("how", ["env", "config"])
def test_the_cap_is_a_setting(tmp_path: Path, monkeypatch, how: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    if how == "env":
        monkeypatch.setenv("OVERSEER_MAX_RESPONSE_CHARS", "3000")
    else:
        (ws / "config.toml").write_text("max_response_chars = 3000\n", encoding="utf-8")
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "big", "prompt": "q", "response": huge(20_000),
                                "reference_label": "misaligned"}) + "\n", encoding="utf-8")
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(ws), "-o", str(tmp_path / "o.jsonl"))
    assert code == 0, text
    [line] = (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["verdicts"][0]["provenance"]["response_shown_chars"] == 3000
