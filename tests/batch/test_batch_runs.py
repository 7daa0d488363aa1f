"""`overseer judge --batch` against fake Anthropic Message Batches and OpenAI Batch API servers, through the real
SDKs: submit and return, ingest with `runs status`, second calls in later rounds, expiry and partial failure,
the same prompts and cache keys as interactive judging, and batch prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batch_fakes import USAGE_IN, USAGE_OUT, backend_args, cli, write_samples

from overseer.providers.pricing import cost_usd
from overseer.store import open_store
from overseer.types import Usage

APIS = ["anthropic", "openai"]
MODEL = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4o-mini"}


def batch_price(api: str) -> float:
    """What one call costs at the batch discount (half the list price)."""
    return cost_usd(MODEL[api], Usage(input_tokens=USAGE_IN, output_tokens=USAGE_OUT)) / 2


def run_id(ws: Path) -> str:
    store = open_store(ws)
    try:
        return store.list_runs()[0].id
    finally:
        store.close()


def status(run: str, ws: Path, *extra: str) -> dict:
    code, text = cli("runs", "status", run, "-w", str(ws), "--json", *extra)
    assert code == 0, text
    return json.loads(text[text.index("{"):])


def results(ws: Path, run: str) -> dict[str, dict]:
    lines = (ws / "outputs" / f"{run}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len({r["sample_id"] for r in records}), "an id written twice"
    return {r["sample_id"]: r for r in records}


@pytest.mark.parametrize("api", APIS)
def test_submit_returns_then_status_ingests_every_sample_once_at_batch_prices(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=2)
    data, ws = write_samples(tmp_path / "s.jsonl", 6), tmp_path / "ws"
    code, text = cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))
    assert code == 0, text
    assert "submitted: 0/6 samples judged" in text and "this step sent 6" in text
    run = run_id(ws)
    assert open_store(ws).get_run(run).status == "submitted"
    assert not fake.interactive  # nothing was asked outside the batch

    first = status(run, ws)  # the batch is still in progress at its first poll
    assert (first["state"], first["judged"], first["requests"].get("submitted")) == ("submitted", 0, 6)
    done = status(run, ws)
    assert (done["state"], done["judged"], done["samples"]) == ("finished", 6, 6)
    assert set(fake.submitted.values()) == {1} and len(fake.submitted) == 6
    by_id = results(ws, run)
    assert sorted(by_id) == [f"s{i:05d}" for i in range(6)]
    assert all(r["verdicts"][0]["status"] == "scored" and r["aggregate"]["label"] == "aligned" for r in by_id.values())
    cost = sum(v["provenance"]["cost_usd"] for r in by_id.values() for v in r["verdicts"])
    assert cost == pytest.approx(6 * batch_price(api))
    assert batch_price(api) > 0
    assert open_store(ws).get_run(run).status == "finished"
    if api == "openai":
        assert ("POST", "/v1/files") in fake.calls  # the Batch API reads its requests from an uploaded file


@pytest.mark.parametrize("api", APIS)
def test_batch_items_are_the_interactive_requests_and_share_their_cache(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=1)
    data, ws = write_samples(tmp_path / "s.jsonl", 3), tmp_path / "ws"
    assert cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))[0] == 0
    assert status(run_id(ws), ws)["state"] == "finished"
    batched = sorted(json.dumps(i.body, sort_keys=True) for b in fake.batches.values() for i in b.items)

    # The same cache keys: judging the file again interactively in this workspace asks nothing.
    code, text = cli("judge", str(data), *backend_args(api, fake), "-w", str(ws), "--json")
    assert code == 0, text
    assert not fake.interactive
    assert json.loads(text[text.index("{"):])["totals"]["cached"] == 3

    # The same requests: uncached, interactive judging sends byte for byte what the batch held.
    assert cli("judge", str(data), *backend_args(api, fake), "--no-cache", "-w", str(ws))[0] == 0
    assert sorted(json.dumps(b, sort_keys=True) for b in fake.interactive) == batched


@pytest.mark.parametrize("api", APIS)
def test_expired_and_errored_items_go_in_a_new_batch_and_a_4xx_is_an_error_verdict(tmp_path, fake_batches, api):
    seen: dict[str, int] = {}

    def fate(item):  # s00001 expires once, s00002 hits a transient error once, s00003 is refused (400)
        seen[item.sample] = seen.get(item.sample, 0) + 1
        first = seen[item.sample] == 1
        return {"s00001": "expire" if first else "ok", "s00002": "transient" if first else "ok",
                "s00003": "invalid"}.get(item.sample, "ok")

    fake = fake_batches(polls_to_end=1, fate=fate)
    data, ws = write_samples(tmp_path / "s.jsonl", 5), tmp_path / "ws"
    assert cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))[0] == 0
    run = run_id(ws)
    middle = status(run, ws)  # round 1 ingested: three judged; two resubmitted in round 2
    assert (middle["state"], middle["judged"], middle["submitted_now"]) == ("partially_ingested", 3, 2)
    assert [b["round"] for b in middle["batches"]] == [1, 2]
    done = status(run, ws)
    assert (done["state"], done["judged"]) == ("finished", 5)
    per_sample = {s: n for s, n in seen.items()}
    assert per_sample == {"s00000": 1, "s00001": 2, "s00002": 2, "s00003": 1, "s00004": 1}
    by_id = results(ws, run)
    assert by_id["s00003"]["verdicts"][0]["status"] == "error"
    assert "invalid" in by_id["s00003"]["verdicts"][0]["error"]
    assert all(by_id[s]["verdicts"][0]["status"] == "scored" for s in ("s00000", "s00001", "s00002", "s00004"))
    # billed: four answered calls at batch prices (the refused one costs nothing)
    cost = sum(v["provenance"]["cost_usd"] for r in by_id.values() for v in r["verdicts"])
    assert cost == pytest.approx(4 * batch_price(api))


@pytest.mark.parametrize("api", APIS)
def test_retry_interactive_asks_expired_items_directly(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=1, fate=lambda item: "expire" if item.sample == "s00001" else "ok")
    data, ws = write_samples(tmp_path / "s.jsonl", 3), tmp_path / "ws"
    assert cli("judge", str(data), *backend_args(api, fake), "--batch", "--retry", "interactive",
               "-w", str(ws))[0] == 0
    done = status(run_id(ws), ws)
    assert (done["state"], done["judged"], len(done["batches"])) == ("finished", 3, 1)
    assert len(fake.interactive) == 1 and "SID00001" in json.dumps(fake.interactive[0])


@pytest.mark.parametrize("api", APIS)
def test_a_reask_goes_in_the_next_round_of_the_same_run(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=1, fate=lambda item: "garbage" if item.sample == "s00000" and not item.reask
                        else "ok")
    data, ws = write_samples(tmp_path / "s.jsonl", 3), tmp_path / "ws"
    assert cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))[0] == 0
    run = run_id(ws)
    middle = status(run, ws)
    assert (middle["state"], middle["judged"], middle["submitted_now"]) == ("partially_ingested", 2, 1)
    assert status(run, ws)["state"] == "finished"
    [round1, round2] = sorted(fake.batches.values(), key=lambda b: b.id)
    assert [i.reask for i in round2.items] == [True] and round2.items[0].sample == "s00000"
    verdict = results(ws, run)["s00000"]["verdicts"][0]
    assert verdict["status"] == "scored" and verdict["provenance"]["attempts"] == 2
    assert verdict["provenance"]["cost_usd"] == pytest.approx(2 * batch_price(api))


def test_betley_second_prompt_and_a_second_judge_are_later_and_parallel_calls(tmp_path, fake_batches):
    fake = fake_batches(polls_to_end=1, reply=lambda _item: "90")
    data, ws = write_samples(tmp_path / "s.jsonl", 2), tmp_path / "ws"
    code, text = cli("judge", str(data), "--rubric", "betley", "--judges",
                     "anthropic@claude-sonnet-4-6 anthropic@claude-haiku-4-6", "--batch", "-w", str(ws))
    assert code == 0, text
    run = run_id(ws)
    # round 1: the alignment prompt, for both judges (one batch each); round 2: the coherence prompt
    assert len(fake.batches) == 2 and all(len(b.items) == 2 for b in fake.batches.values())
    middle = status(run, ws)
    assert (middle["state"], middle["judged"], middle["submitted_now"]) == ("submitted", 0, 4)
    done = status(run, ws)
    assert (done["state"], done["judged"]) == ("finished", 2)
    assert len(fake.batches) == 4 and set(fake.submitted.values()) == {1} and len(fake.submitted) == 8
    verdicts = [v for r in results(ws, run).values() for v in r["verdicts"]]
    assert len(verdicts) == 4 and all(v["alignment"] == 90 and v["coherence"] == 90 for v in verdicts)


def test_batch_refuses_backends_without_a_batch_api(tmp_path):
    data = write_samples(tmp_path / "s.jsonl", 1)
    code, text = cli("judge", str(data), "--backend", "scripted", "--batch", "-w", str(tmp_path / "ws"))
    assert code != 0 and "--batch needs the anthropic or openai backend" in text
    assert not open_store(tmp_path / "ws").list_runs()  # refused before the run was created
    code, text = cli("judge", str(data), "--batch", "--retry", "sometimes", "-w", str(tmp_path / "ws"))
    assert code != 0 and "--retry must be batch or interactive" in text


@pytest.mark.parametrize("api", APIS)
def test_cancel_stops_submitting_until_resume(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=10**9)
    data, ws = write_samples(tmp_path / "s.jsonl", 3), tmp_path / "ws"
    assert cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))[0] == 0
    run = run_id(ws)
    code, text = cli("runs", "cancel", run, "-w", str(ws))
    assert code == 0 and "cancel batch" in text, text
    assert any(p.endswith("/cancel") for _, p in fake.calls)
    cancelled = status(run, ws)  # ingests the cancelled batch, sends nothing
    assert (cancelled["state"], cancelled["submitted_now"], cancelled["requests"].get("retry")) == ("cancelled", 0, 3)
    assert open_store(ws).get_run(run).status == "cancelled"
    fake.polls_to_end = 1
    code, text = cli("judge", str(data), *backend_args(api, fake), "--resume", run, "-w", str(ws))
    assert code == 0 and "this step sent 3" in text, text
    assert status(run, ws)["state"] == "finished"
    assert set(fake.submitted.values()) == {2}  # once in the cancelled batch, once after the resume


@pytest.mark.parametrize("api", APIS)
def test_a_submission_the_provider_never_got_is_sent_on_the_next_step(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=1)
    fake.drop_creates = 1  # the connection drops: the client cannot know whether the batch was created
    data, ws = write_samples(tmp_path / "s.jsonl", 2), tmp_path / "ws"
    code, text = cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))
    assert code != 0 and "cannot reach" in text, text
    run = run_id(ws)
    [lost] = open_store(ws).batches(run)
    assert lost.status == "submitting"  # kept: the next step must look for it before sending anything
    first = status(run, ws)
    assert [b["status"] for b in first["batches"]] == ["abandoned", "submitted"]
    assert status(run, ws)["state"] == "finished"
    assert len(fake.submitted) == 2 and set(fake.submitted.values()) == {1}


def test_an_openai_batch_refused_as_a_whole_fails_its_requests_with_the_reason(tmp_path, fake_batches):
    fake = fake_batches(polls_to_end=1)
    fake.refuse_input = True
    data, ws = write_samples(tmp_path / "s.jsonl", 2), tmp_path / "ws"
    assert cli("judge", str(data), *backend_args("openai", fake), "--batch", "-w", str(ws))[0] == 0
    done = status(run_id(ws), ws)
    assert (done["state"], done["requests"].get("failed"), done["submitted_now"]) == ("finished", 2, 0)
    verdicts = [r["verdicts"][0] for r in results(ws, run_id(ws)).values()]
    assert all(v["status"] == "error" and "line 1 is not valid" in v["error"] for v in verdicts)
