"""kill -9 (a real SIGKILL to a subprocess) of a batch run, then resume: every id exactly once, no request
submitted twice, every call billed once at batch prices.

Two windows: (1) after the provider created the batch but before the run store recorded its id — the one place
a careless client would submit again; (2) between submit and ingest, while `runs status --wait` polls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from batch_fakes import USAGE_IN, USAGE_OUT, backend_args, cli, write_samples

from overseer.providers.pricing import cost_usd
from overseer.store import open_store
from overseer.types import Usage

N = 8
MODEL = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4o-mini"}


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "overseer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def only_run(ws: Path) -> str:
    store = open_store(ws)
    try:
        [run] = store.list_runs()
        return run.id
    finally:
        store.close()


def check_once(ws: Path, run: str, fake, api: str) -> None:
    assert len(fake.submitted) == N and set(fake.submitted.values()) == {1}, fake.submitted  # nothing sent twice
    records = [json.loads(line) for line in (ws / "outputs" / f"{run}.jsonl").read_text().splitlines()]
    assert sorted(r["sample_id"] for r in records) == [f"s{i:05d}" for i in range(N)]  # every id exactly once
    store = open_store(ws)
    try:
        assert len(list(store.results(run))) == N and store.get_run(run).status == "finished"
        billed = store.totals(run)["cost_usd"]
    finally:
        store.close()
    one_call = cost_usd(MODEL[api], Usage(input_tokens=USAGE_IN, output_tokens=USAGE_OUT))
    assert billed == pytest.approx(N * one_call / 2)  # each call once, at half price


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_kill_9_after_the_provider_created_the_batch_before_its_id_was_recorded(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=1)
    fake.create_gate.clear()  # the provider creates the batch, then holds its reply
    data, ws = write_samples(tmp_path / "s.jsonl", N), tmp_path / "ws"
    proc = spawn("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))
    try:
        wait_until(lambda: len(fake.batches) == 1, proc)
        kill(proc)
    finally:
        fake.create_gate.set()
        if proc.poll() is None:
            proc.kill()
    run = only_run(ws)
    [batch] = open_store(ws).batches(run)
    assert (batch.status, batch.provider_id) == ("submitting", None)  # really killed inside the window

    code, text = cli("runs", "status", run, "-w", str(ws))
    assert code == 0, text
    assert "interrupted submission had created" in text and "finished: 8/8" in text
    assert len(fake.batches) == 1
    check_once(ws, run, fake, api)


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_kill_9_between_submit_and_ingest_then_resume(tmp_path, fake_batches, api):
    fake = fake_batches(polls_to_end=10**9)  # in progress until the test says otherwise
    data, ws = write_samples(tmp_path / "s.jsonl", N), tmp_path / "ws"
    code, text = cli("judge", str(data), *backend_args(api, fake), "--batch", "-w", str(ws))
    assert code == 0, text
    run = only_run(ws)
    polls = lambda: sum(m == "GET" and "/batches/" in p for m, p in fake.calls)  # noqa: E731
    proc = spawn("runs", "status", run, "--wait", "--poll-interval", "0.2", "-w", str(ws))
    try:
        wait_until(lambda: polls() >= 3, proc)
        kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(open_store(ws).results(run))
    fake.polls_to_end = 0  # the batch ends at its next poll

    code, text = cli("judge", str(data), *backend_args(api, fake), "--resume", run, "-w", str(ws))
    assert code == 0, text
    assert len(fake.batches) == 1
    check_once(ws, run, fake, api)
