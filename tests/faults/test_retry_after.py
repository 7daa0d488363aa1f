"""ARCH 9: a 429 with Retry-After: 7 → the client waits at least 7 s (measured by the server), attempts stay
bounded, and every sample finishes exactly once. Real openai SDK, real socket, the real `overseer judge`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import Action, cli, judge_args, read_jsonl, write_samples

pytestmark = pytest.mark.slow


def test_429_with_retry_after_7_waits_at_least_7_seconds_and_every_sample_finishes_once(
        fake_openai, tmp_path: Path) -> None:
    limited = {"s00000", "s00002", "s00005"}

    def behaviour(request, n):  # type: ignore[no-untyped-def]
        if request.sample in limited and n == 0:
            return Action(kind="status", status=429, headers={"Retry-After": "7"})
        return Action()

    server = fake_openai(behaviour)
    data, out = write_samples(tmp_path / "in.jsonl", 8), tmp_path / "out.jsonl"
    code, text = cli(*judge_args(data, server, tmp_path / "ws", "--concurrency", "8", "-o", str(out)))
    assert code == 0, text

    results = read_jsonl(out)
    assert sorted(r["sample_id"] for r in results) == [f"s{i:05d}" for i in range(8)]  # each exactly once
    for sample in limited:
        first, second = server.for_sample(sample)  # exactly two requests: the 429, then the answered retry
        assert first.answer == "429" and second.answer == "ok"
        assert second.at - first.at >= 7.0, second.at - first.at
    for result in results:
        verdict = result["verdicts"][0]
        assert verdict["status"] == "scored"
        expected = 2 if result["sample_id"] in limited else 1
        assert verdict["provenance"]["attempts"] == expected
        assert len(server.for_sample(result["sample_id"])) == expected
    assert len(server.requests) == 8 + len(limited)


def test_429_forever_is_bounded_by_max_attempts_and_ends_as_an_error_verdict(
        fake_openai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that never stops saying 429 cannot hold a sample forever: max_attempts requests, then error."""
    monkeypatch.setenv("OVERSEER_MAX_ATTEMPTS", "3")

    def behaviour(request, n):  # type: ignore[no-untyped-def]
        if request.sample == "s00001":
            return Action(kind="status", status=429, headers={"Retry-After": "0.2"})
        return Action()

    server = fake_openai(behaviour)
    data, out = write_samples(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    code, text = cli(*judge_args(data, server, tmp_path / "ws", "-o", str(out)))
    assert code == 0, text
    by_id = {r["sample_id"]: r["verdicts"][0] for r in read_jsonl(out)}
    assert sorted(by_id) == ["s00000", "s00001", "s00002"]
    assert by_id["s00001"]["status"] == "error" and "429" in by_id["s00001"]["error"]
    assert by_id["s00001"]["provenance"]["attempts"] == 3 == len(server.for_sample("s00001"))
    assert by_id["s00001"]["label"] is None  # an error is never a default label
    gaps = [b.at - a.at for a, b in zip(server.for_sample("s00001"), server.for_sample("s00001")[1:], strict=False)]
    assert all(gap >= 0.2 for gap in gaps), gaps
