"""ARCH 10: 400-class rejections are not retried (one request), give an error verdict, and are never cached;
a 401 stops the run (exit 3) naming the variable to fix.

Already covered elsewhere, not repeated here: tests/cli/test_auth_stop.py (a 401 at concurrency 1 → exit 3,
OPENAI_API_KEY named, exactly one request, run left `interrupted`), tests/providers/test_openai_fake_wire.py
(401/404 at the provider level) and tests/core/test_retry.py (the retry layer's policy). This file adds the
error verdict + no-cache behaviour through the CLI, and a 401 that arrives mid-run under concurrency, then a
resume with a working key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_helpers import Action, cli, judge_args, read_jsonl, write_samples


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_error_is_asked_once_gives_an_error_verdict_and_is_not_cached(
        fake_openai, tmp_path: Path, status: int) -> None:
    def behaviour(request, n):  # type: ignore[no-untyped-def]
        return Action(kind="status", status=status) if request.sample == "s00001" else Action()

    server = fake_openai(behaviour)
    data, ws = write_samples(tmp_path / "in.jsonl", 3), tmp_path / "ws"
    code, text = cli(*judge_args(data, server, ws, "-o", str(tmp_path / "a.jsonl")))
    assert code == 0, text
    verdicts = {r["sample_id"]: r["verdicts"][0] for r in read_jsonl(tmp_path / "a.jsonl")}
    bad = verdicts["s00001"]
    assert bad["status"] == "error" and str(status) in bad["error"] and bad["label"] is None
    assert bad["provenance"]["attempts"] == 1
    assert len(server.for_sample("s00001")) == 1  # no retry
    assert all(verdicts[s]["status"] == "scored" for s in ("s00000", "s00002"))

    # A second run of the same input: the scored samples come from the cache, the error is asked again.
    code, text = cli(*judge_args(data, server, ws, "-o", str(tmp_path / "b.jsonl")))
    assert code == 0, text
    again = {r["sample_id"]: r["verdicts"][0] for r in read_jsonl(tmp_path / "b.jsonl")}
    assert len(server.for_sample("s00001")) == 2
    assert again["s00001"]["provenance"]["cached"] is False
    assert [len(server.for_sample(s)) for s in ("s00000", "s00002")] == [1, 1]
    assert again["s00000"]["provenance"]["cached"] and again["s00002"]["provenance"]["cached"]


def test_401_mid_run_stops_everything_then_resume_with_a_good_key_finishes_without_re_asking(
        fake_openai, tmp_path: Path) -> None:
    n, concurrency, key_ok = 200, 8, {"value": True}

    def behaviour(request, _n):  # type: ignore[no-untyped-def]
        # The key is revoked once 40 requests have been answered.
        if not key_ok["value"] or len(server.requests) > 40:
            key_ok["value"] = False
            return Action(kind="status", status=401)
        return Action()

    server = fake_openai(behaviour)
    data, ws, out = write_samples(tmp_path / "in.jsonl", n), tmp_path / "ws", tmp_path / "out.jsonl"
    args = judge_args(data, server, ws, "--concurrency", str(concurrency), "-o", str(out))
    code, text = cli(*args)
    assert code == 3, text
    assert "OPENAI_API_KEY" in text and "Traceback" not in text
    rejected = [r for r in server.requests if r.answer == "401"]
    # The run stopped at once: besides the first 401, only calls already in flight (or sent in the instant
    # before the client read it) were rejected too; the other ~150 samples were never tried.
    assert 1 <= len(rejected) <= 2 * concurrency, len(rejected)
    done_before = {r["sample_id"] for r in read_jsonl(out)}
    assert 0 < len(done_before) < n
    asked_before = len(server.requests)

    key_ok["value"], server.behaviour = True, lambda _req, _n: Action()  # the user fixed the key
    code, text = cli(*args, "--resume")
    assert code == 0, text
    ids = [r["sample_id"] for r in read_jsonl(out)]
    assert sorted(ids) == [f"s{i:05d}" for i in range(n)]  # every id exactly once
    asked_after = [r.sample for r in server.requests[asked_before:]]
    assert not set(asked_after) & done_before  # finished samples are not re-billed
    assert len(asked_after) == len(set(asked_after))  # and each pending one is asked once
    # A result committed to the run store as the 401 stopped the run, but not yet written to the output, is
    # copied over on resume rather than asked again, so at most the others are asked.
    assert n - len(done_before) - concurrency <= len(asked_after) <= n - len(done_before)
    assert all(json.loads(line)["verdicts"][0]["status"] == "scored" for line in out.read_text().splitlines())
