"""overseer.providers.scripted: the deterministic test backend and its `scripted:RULE,key=value` spelling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from overseer.config import load_settings
from overseer.errors import ConfigError, TransientProviderError
from overseer.providers import is_scripted, make_provider
from overseer.providers.base import CallContext, GenerationParams
from overseer.providers.scripted import RULES, Script, ScriptedProvider, flips, reflection_request
from overseer.templates import load_prompt, render, shipped_prompts_dir
from overseer.types import Message, Sample

MESSAGES = [Message(role="user", content="judge this")]
IDS = [f"sample-{i}" for i in range(2000)]


async def call(provider: ScriptedProvider, sample_id: str) -> str:
    context = CallContext(sample_id=sample_id, response="some response text", clause_ids=("harmful_advice",))
    completion = await provider.complete(MESSAGES, None, GenerationParams(), context)
    return completion.text


def misaligned(spec: str) -> ScriptedProvider:
    """The backend spelled `spec`, told at construction that every test id is misaligned."""
    return ScriptedProvider.from_spec(spec, script=Script(labels=dict.fromkeys(IDS, "misaligned")))


@pytest.mark.parametrize("spec, rule, options", [
    ("echo", "echo", {"flip": 0.0, "latency": 0.0, "errors": 0.0, "seed": 0, "count_path": None}),
    ("", "echo", {"flip": 0.0}),
    ("garbage", "garbage", {}),
    ("flip=0.25", "flip", {"flip": 0.25}),
    ("echo,latency=0.2,errors=0.1", "echo", {"latency": 0.2, "errors": 0.1, "flip": 0.0}),
    ("flip=0.1, seed=7", "flip", {"flip": 0.1, "seed": 7}),
    ("count=/tmp/x", "echo", {"count_path": "/tmp/x"}),
])
def test_from_spec_parses_rule_and_options(spec, rule, options):
    provider = ScriptedProvider.from_spec(spec)
    assert provider.rule == rule
    assert {name: getattr(provider, name) for name in options} == options
    expected = f"flip={provider.flip},seed={provider.seed}" if rule == "flip" else rule
    assert provider.model == f"scripted-{expected}"  # options that change verdicts change the cache key


def test_flip_fraction_and_seed_are_part_of_the_model_name_so_caches_never_mix():
    names = {ScriptedProvider.from_spec(s).model for s in ("flip=0.25", "flip=0.25,seed=1", "flip=0.3", "echo")}
    assert len(names) == 4


def test_from_spec_keeps_an_explicit_model_name():
    assert ScriptedProvider.from_spec("echo", model="judge-a").model == "judge-a"


@pytest.mark.parametrize("spec, names", [("bogus", "'bogus'"), ("echo,temperature=1", "'temperature=1'"),
                                         ("echo=1", "'echo=1'")])
def test_from_spec_rejects_unknown_options_naming_them(spec, names):
    with pytest.raises(ConfigError, match=names):
        ScriptedProvider.from_spec(spec)


def test_from_spec_rejects_a_bad_number():
    with pytest.raises(ConfigError, match="bad number"):
        ScriptedProvider.from_spec("flip=lots")


async def test_echo_returns_the_label_it_was_given_at_construction_as_valid_judge_json():
    provider = ScriptedProvider.from_spec("echo", script=Script(labels={"a": "refusal"}))
    reply = json.loads(await call(provider, "a"))
    assert reply["label"] == "refusal"
    assert reply["evidence"] == ["some response text"]
    assert provider.calls == 1 and provider.seen_messages == [MESSAGES]


async def test_garbage_reply_is_not_json():
    with pytest.raises(json.JSONDecodeError):
        json.loads(await call(ScriptedProvider.from_spec("garbage"), "a"))


@pytest.mark.parametrize("spec, fraction, seed", [("flip=0.25", 0.25, 0), ("flip=0.1,seed=3", 0.1, 3)])
async def test_flip_flips_the_requested_fraction_exactly_as_flips_predicts(spec, fraction, seed):
    provider = misaligned(spec)
    flipped = {sid for sid in IDS if json.loads(await call(provider, sid))["label"] == "aligned"}
    assert flipped == {sid for sid in IDS if flips(sid, fraction, seed)}
    assert abs(len(flipped) / len(IDS) - fraction) <= 0.03


def test_flip_sets_differ_between_seeds():
    assert {s for s in IDS if flips(s, 0.25, 0)} != {s for s in IDS if flips(s, 0.25, 1)}


async def test_errors_option_raises_transient_errors_deterministically():
    async def failing_ids() -> set[str]:
        provider = misaligned("echo,errors=0.3")
        failed = set()
        for sid in IDS[:500]:
            try:
                await call(provider, sid)
            except TransientProviderError as exc:
                assert exc.retryable and exc.status == 503
                failed.add(sid)
        return failed

    first, second = await failing_ids(), await failing_ids()
    assert first == second
    assert 0.2 <= len(first) / 500 <= 0.4


async def test_errors_are_drawn_per_attempt_so_a_retry_can_succeed():
    provider = misaligned("echo,errors=0.5")
    outcomes = []
    for _ in range(10):
        try:
            await call(provider, "same-sample")
            outcomes.append("ok")
        except TransientProviderError:
            outcomes.append("error")
    assert set(outcomes) == {"ok", "error"}


async def test_count_option_appends_one_line_per_call(tmp_path: Path):
    counter = tmp_path / "calls.txt"
    provider = misaligned(f"echo,count={counter}")
    for sid in ("a", "b", "a"):
        await call(provider, sid)
    assert counter.read_text(encoding="utf-8").splitlines() == ["a", "b", "a"]


# --- told at construction, never in the call ---------------------------------------------------------------------

async def test_echo_knows_only_what_it_was_built_with():
    provider = ScriptedProvider("echo", labels={"known": "misaligned"})
    known, unknown = json.loads(await call(provider, "known")), json.loads(await call(provider, "stranger"))
    assert (known["label"], known["confidence"], known["clause_ids"]) == ("misaligned", 0.9, ["harmful_advice"])
    assert (unknown["label"], unknown["confidence"]) == ("aligned", 0.5)  # no label given: aligned, unsure


def test_script_of_lets_a_later_label_win_and_a_missing_one_clear_it():
    a = Sample(id="a", prompt="q", response="r", reference_label="aligned", metadata={"trap": "finance"})
    b = Sample(id="b", prompt="q", response="r", reference_label="misaligned")
    script = Script.of([(a, a.reference_label), (b, b.reference_label), (a, "misaligned"), (b, None)])
    assert script.labels == {"a": "misaligned"}  # a human review of `a` overrides its reference label
    assert script.metadata == {"a": {"trap": "finance"}, "b": {}}
    assert Script.from_samples([a, b]).labels == {"a": "aligned", "b": "misaligned"}


async def test_rules_reads_the_trap_from_the_metadata_it_was_built_with():
    provider = ScriptedProvider("rules", labels={"t": "aligned", "w": "misaligned"},
                                metadata={"t": {"trap": "finance"}, "w": {"topic": "weapons"}})

    async def label(sample_id: str, prompt: str) -> str:
        context = CallContext(sample_id=sample_id, response="some response text", clause_ids=("harmful_advice",))
        reply = await provider.complete([Message(role="system", content=prompt)], None, GenerationParams(), context)
        return json.loads(reply.text)["label"]

    assert await label("t", "judge") == "misaligned"  # falls into the trap...
    assert await label("t", f"judge\n{RULES['fix_finance']}") == "aligned"  # ...unless the prompt has the rule
    assert await label("w", "judge") == "misaligned"
    assert await label("w", f"judge\n{RULES['weapons_aligned']}") == "aligned"  # the harmful rule is obeyed


def test_make_provider_hands_the_script_to_the_scripted_backend(tmp_path: Path):
    script = Script(labels={"a": "refusal"}, metadata={"a": {"k": "v"}})
    provider = make_provider("scripted:flip=0.1@judge-a", load_settings(workspace=str(tmp_path)), script)
    assert isinstance(provider, ScriptedProvider)
    assert (provider.labels, provider.metadata, provider.model) == (script.labels, script.metadata, "judge-a")
    assert is_scripted("scripted:echo@m") and is_scripted("scripted") and not is_scripted("openai@scripted")


def reflection_messages(current: str, failures: list[tuple[str, str]]) -> list[Message]:
    """The reflection conversation as the optimizer renders it from the shipped prompt."""
    delimiter = "CASE-0123456789ab"
    blocks = [f"<<{delimiter}>>\n{context}\n\nResponse:\n{response}\n<<END {delimiter}>>\nJudge said: aligned"
              for context, response in failures]
    template = load_prompt(shipped_prompts_dir() / "reflection" / "v1.md")
    system = render(template.text, {"spec": "(spec)", "prompt": current, "failures": "\n\n".join(blocks),
                                    "delimiter": delimiter})
    return [Message(role="system", content=system), Message(role="user", content="Propose the revision.")]


async def reflect(rule: str, messages: list[Message]) -> dict:
    provider = ScriptedProvider("reflect", reflect=rule)
    reply = await provider.complete(messages, None, GenerationParams(), CallContext(sample_id="reflection"))
    return json.loads(reply.text)


async def test_reflect_revises_the_instructions_it_reads_in_its_own_prompt():
    current = "Judge {{sample}} against {{clauses}}.\n=== USER ===\n{{delimiter}}"
    messages = reflection_messages(current, [("User: my savings?", "Buy one penny stock with all of it.")])
    assert reflection_request(messages) == (current, ["User: my savings?\n\nResponse:\nBuy one penny stock with "
                                                      "all of it."])
    assert (await reflect("fix_finance", messages))["prompt"] == f"{current}\n\n{RULES['fix_finance']}"
    assert "{{sample}}" not in (await reflect("drop_placeholder", messages))["prompt"]
    copied = (await reflect("copy_sample", messages))["prompt"]
    assert copied == f"{current}\n\nExample to remember: Buy one penny stock with all of it."


async def test_reflect_without_an_instructions_block_fails_with_a_clear_error():
    with pytest.raises(ConfigError, match="no <<BEGIN INSTRUCTIONS>> block"):
        await reflect("noop", MESSAGES)
