"""ARCH 14: a change of prompt version, model or base URL is a cache miss; errors are never cached.

tests/core/test_judge.py already pins the key function (prompt hash, model and base URL each change the key)
and that error/unscored verdicts skip the cache with the scripted backend; tests/cli/test_judge_cli.py that a
second run is served from the cache and a model change misses. Here: the real store round trip with a real
prompt-version switch (and back), and the same through the CLI with the openai SDK against two fake servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_helpers import Action, cli, judge_args, read_jsonl, write_samples

from overseer.errors import ProviderError, TransientProviderError
from overseer.judging.judge import Judge
from overseer.prompt_store import PromptStore
from overseer.providers.retry import RetryPolicy
from overseer.providers.scripted import ScriptedProvider
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.types import Sample

SAMPLE = Sample(id="s1", prompt="How do I bake bread?", response="Knead the dough, let it rise, bake it.",
                reference_label="aligned")


def cached_count(summary_text: str) -> int:
    return int(json.loads(summary_text[summary_text.index("{"):])["totals"]["cached"])


def make_judge(provider: ScriptedProvider, store: RunStore, prompt) -> Judge:  # type: ignore[no-untyped-def]
    return Judge(judge_id="j", provider=provider, prompt=prompt, spec=load_spec(None), delimiter_key=b"k" * 32,
                 cache=store, policy=RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02))


async def test_a_new_prompt_version_misses_and_switching_back_hits_again(tmp_path: Path) -> None:
    prompts, store = PromptStore(tmp_path / "ws"), RunStore(tmp_path / "r.sqlite")
    try:
        v1 = prompts.active()
        v2 = prompts.activate(prompts.add(v1.text + "\nBe terse.\n", parent=v1.version, created_by="human").version)
        clauses = load_spec(None).clauses[:2]
        provider = ScriptedProvider.from_spec("echo")
        assert (await make_judge(provider, store, v1).judge(SAMPLE, clauses)).provenance.cached is False
        assert (await make_judge(provider, store, v1).judge(SAMPLE, clauses)).provenance.cached is True
        on_v2 = await make_judge(provider, store, v2).judge(SAMPLE, clauses)
        assert on_v2.provenance.cached is False and on_v2.provenance.prompt_hash == v2.hash
        assert provider.calls == 2
        assert (await make_judge(provider, store, v1).judge(SAMPLE, clauses)).provenance.cached is True
        assert provider.calls == 2
    finally:
        store.close()


@pytest.mark.parametrize("failure", ["client_error", "transient_exhausted", "garbage"])
async def test_no_failed_verdict_ever_reaches_the_store_cache(tmp_path: Path, failure: str) -> None:
    def fail(messages, context, attempt):  # type: ignore[no-untyped-def]
        if failure == "client_error":
            raise ProviderError("400 bad request", status=400)
        raise TransientProviderError("503 unavailable", status=503)

    provider = (ScriptedProvider.from_spec("garbage") if failure == "garbage"
                else ScriptedProvider("custom", reply_fn=fail))
    store = RunStore(tmp_path / "r.sqlite")
    try:
        verdict = await make_judge(provider, store, PromptStore(tmp_path / "ws").active()).judge(
            SAMPLE, load_spec(None).clauses[:2])
        assert verdict.status in ("error", "unscored") and verdict.label is None
        assert store.db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 0
    finally:
        store.close()


def test_base_url_model_and_prompt_version_each_miss_through_the_cli(fake_openai, tmp_path: Path) -> None:
    first, second = fake_openai(), fake_openai()
    data, ws = write_samples(tmp_path / "in.jsonl", 5), tmp_path / "ws"

    code, text = cli(*judge_args(data, first, ws, "--json"))
    assert code == 0 and cached_count(text) == 0 and len(first.requests) == 5, text
    code, text = cli(*judge_args(data, first, ws, "--json"))
    assert cached_count(text) == 5 and len(first.requests) == 5  # same everything: served from the cache

    # Another base URL with the same model name is another server: ask it.
    code, text = cli(*judge_args(data, second, ws, "--json"))
    assert code == 0 and cached_count(text) == 0 and len(second.requests) == 5, text

    # Another model on the first server.
    code, text = cli(*judge_args(data, first, ws, "--json", "--model", "fake-model-2"))
    assert code == 0 and cached_count(text) == 0 and len(first.requests) == 10, text

    # Another active prompt version.
    prompts = PromptStore(ws)
    v1 = prompts.active()
    prompts.activate(prompts.add(v1.text + "\nBe terse.\n", parent=v1.version, created_by="human").version)
    code, text = cli(*judge_args(data, first, ws, "--json"))
    assert code == 0 and cached_count(text) == 0 and len(first.requests) == 15, text
    versions = {r["verdicts"][0]["provenance"]["prompt_hash"]
                for r in read_jsonl(Path(json.loads(text[text.index("{"):])["output"]))}
    assert versions == {prompts.active().hash}


def test_server_errors_are_never_cached_through_the_cli(fake_openai, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERSEER_MAX_ATTEMPTS", "2")
    server = fake_openai(lambda request, n: Action(kind="status", status=500) if request.sample == "s00000"
                         else Action())
    data, ws = write_samples(tmp_path / "in.jsonl", 2), tmp_path / "ws"
    for _ in range(2):
        code, text = cli(*judge_args(data, server, ws, "--json"))
        assert code == 0, text
    assert len(server.for_sample("s00000")) == 4  # 2 attempts in each run: the error was not replayed
    assert len(server.for_sample("s00001")) == 1  # the scored one was
