"""ARCH 11: a reply that is invalid JSON, truncated JSON or a refusal → exactly one re-ask (two requests per
sample), then the sample is `unscored` with the raw reply kept and sent to review — never a default label.
Through the fake server and the real openai SDK (tests/core/test_judge.py covers the same rule at unit level)."""

from __future__ import annotations

import json
from pathlib import Path

from fault_helpers import ALIGNED, Action, cli, judge_args, read_jsonl, write_samples

FULL = json.dumps(ALIGNED)
BAD_REPLIES = {
    "s00000": "{label: aligned, alignment: 90}",  # invalid JSON
    "s00001": FULL[: len(FULL) // 2],  # truncated output (max_tokens hit mid-object)
    "s00002": "I'm sorry, but I can't help with evaluating this content.",  # a refusal in prose
    "s00003": ":",  # the degenerate replies of ARCH 3
    "s00004": "Thought process:",
    "s00005": "[]",  # valid JSON, wrong shape
}


def test_unparseable_replies_are_reasked_once_then_unscored_with_the_raw_text(fake_openai, tmp_path: Path) -> None:
    def behaviour(request, n):  # type: ignore[no-untyped-def]
        bad = BAD_REPLIES.get(request.sample)
        return Action(kind="text", text=bad) if bad is not None else Action()

    server = fake_openai(behaviour)
    data, out = write_samples(tmp_path / "in.jsonl", 8), tmp_path / "out.jsonl"
    code, text = cli(*judge_args(data, server, tmp_path / "ws", "--concurrency", "4", "-o", str(out), "--json"))
    assert code == 0, text
    results = {r["sample_id"]: r for r in read_jsonl(out)}
    assert sorted(results) == [f"s{i:05d}" for i in range(8)]
    for sample, bad in BAD_REPLIES.items():
        requests = server.for_sample(sample)
        assert [r.reask for r in requests] == [False, True], sample  # exactly one re-ask, bounded
        reask_turns = requests[1].body["messages"]
        assert any(m["role"] == "assistant" and m["content"] == bad for m in reask_turns)
        verdict, aggregate = results[sample]["verdicts"][0], results[sample]["aggregate"]
        assert verdict["status"] == "unscored", sample
        assert verdict["raw_text"] == bad and verdict["problems"], sample
        assert verdict["provenance"]["attempts"] == 2
        assert verdict["label"] is None and aggregate["label"] is None, sample  # never a default label
        assert "unscored" in aggregate["review_reasons"], sample
    for sample in ("s00006", "s00007"):
        assert len(server.for_sample(sample)) == 1
        assert results[sample]["verdicts"][0]["status"] == "scored"
    summary = json.loads(text[text.index("{"):])
    assert summary["totals"]["unscored"] == len(BAD_REPLIES)


def test_a_bad_first_reply_and_a_good_re_ask_is_scored_from_the_second_reply(fake_openai, tmp_path: Path) -> None:
    server = fake_openai(lambda request, n: Action(kind="text", text="not json") if n == 0 else Action())
    data, out = write_samples(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    code, text = cli(*judge_args(data, server, tmp_path / "ws", "-o", str(out)))
    assert code == 0, text
    for result in read_jsonl(out):
        verdict = result["verdicts"][0]
        assert verdict["status"] == "scored" and verdict["label"] == "aligned"
        assert verdict["provenance"]["attempts"] == 2
        assert [r.reask for r in server.for_sample(result["sample_id"])] == [False, True]


def test_unscored_verdicts_are_not_cached_a_rerun_asks_again(fake_openai, tmp_path: Path) -> None:
    server = fake_openai(lambda request, n: Action(kind="text", text="no verdict here"))
    data, ws = write_samples(tmp_path / "in.jsonl", 2), tmp_path / "ws"
    for name in ("a", "b"):
        code, text = cli(*judge_args(data, server, ws, "-o", str(tmp_path / f"{name}.jsonl")))
        assert code == 0, text
    assert len(server.requests) == 2 * 2 * 2  # two samples × (ask + re-ask) × two runs
