"""AnthropicProvider driven through the real anthropic SDK against a local server speaking the Messages API."""

from __future__ import annotations

import json

import pytest

from overseer.errors import AuthenticationError, ProviderError, TransientProviderError
from overseer.providers.anthropic import AnthropicProvider
from overseer.providers.base import CallContext, GenerationParams
from overseer.providers.retry import RetryPolicy, with_retries
from overseer.types import JudgeOutput, Message

SCHEMA = JudgeOutput.model_json_schema()
VERDICT = {"label": "aligned", "alignment": 90, "coherence": 95, "generalization": "n/a", "clause_ids": [],
           "evidence": ["boil it"], "rationale": "fine", "confidence": 0.8, "manipulation_attempt": False}
MESSAGES = [Message(role="system", content="You are a judge."), Message(role="developer", content="Be strict."),
            Message(role="user", content="Judge this."), Message(role="tool", content="extra context")]
FAST = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.05)


def message(content: list[dict], model: str = "claude-fake-1") -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 7}}


TOOL_REPLY = {"body": message([{"type": "tool_use", "id": "toolu_1", "name": "record_verdict", "input": VERDICT}])}


def error(status: int, kind: str, text: str, headers: dict | None = None, delay: float = 0.0) -> dict:
    return {"status": status, "body": {"type": "error", "error": {"type": kind, "message": text}},
            "headers": headers or {}, "delay": delay}


def provider(server, timeout: float = 10.0) -> AnthropicProvider:
    return AnthropicProvider(model="claude-fake-1", api_key="sk-ant-test", base_url=server.url, timeout=timeout)


async def call(p: AnthropicProvider, policy: RetryPolicy = FAST):
    return await with_retries(lambda: p.complete(MESSAGES, SCHEMA, GenerationParams(max_tokens=300),
                                                 CallContext()), policy)


async def test_tool_use_reply_is_the_verdict(fake_server):
    server = fake_server([TOOL_REPLY])
    p = provider(server)
    completion, attempts = await call(p)
    await p.aclose()
    assert json.loads(completion.text) == VERDICT
    assert (completion.mode, completion.model, attempts) == ("tool", "claude-fake-1", 1)
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (12, 7)
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    # SDK 2.x sends the key as a bearer token (1.x used x-api-key)
    assert "sk-ant-test" in (seen.headers.get("authorization", "") + seen.headers.get("x-api-key", ""))
    assert "temperature" not in seen.body  # API version 2026-10-21 rejects sampling parameters
    assert seen.body["system"] == "You are a judge.\n\nBe strict."
    # user + tool merge into one user turn: the API rejects two user turns in a row
    assert seen.body["messages"] == [{"role": "user", "content": "Judge this.\n\nextra context"}]
    assert seen.body["tool_choice"] == {"type": "tool", "name": "record_verdict"}
    assert seen.body["tools"][0]["input_schema"] == SCHEMA
    assert seen.body["max_tokens"] == 300


async def test_no_tool_call_returns_the_prose(fake_server):
    prose = [{"type": "text", "text": "I cannot "}, {"type": "text", "text": "judge"}]
    server = fake_server([{"body": message(prose)}])
    p = provider(server)
    completion, _ = await call(p)
    await p.aclose()
    assert (completion.text, completion.mode) == ("I cannot judge", "tool")


async def test_429_retry_after_is_honoured(fake_server):
    server = fake_server([error(429, "rate_limit_error", "slow down", {"Retry-After": "2"}), TOOL_REPLY])
    p = provider(server)
    completion, attempts = await call(p)
    await p.aclose()
    assert attempts == 2 and json.loads(completion.text) == VERDICT
    first, second = server.requests
    assert second.at - first.at >= 2.0


async def test_500_twice_then_success(fake_server):
    server = fake_server([error(500, "api_error", "boom"), error(529, "overloaded_error", "busy"), TOOL_REPLY])
    p = provider(server)
    completion, attempts = await call(p)
    await p.aclose()
    assert attempts == 3 and len(server.requests) == 3
    assert json.loads(completion.text) == VERDICT


async def test_slow_server_times_out_and_retries_are_bounded(fake_server):
    server = fake_server([{**TOOL_REPLY, "delay": 2.0}])
    p = provider(server, timeout=0.5)
    with pytest.raises(TransientProviderError, match="did not answer"):
        await call(p, RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.05))
    await p.aclose()
    assert len(server.requests) == 2


async def test_401_stops_at_once_and_names_the_variable(fake_server):
    server = fake_server([error(401, "authentication_error", "invalid x-api-key")])
    p = provider(server)
    with pytest.raises(AuthenticationError) as info:
        await call(p)
    await p.aclose()
    assert len(server.requests) == 1
    assert "ANTHROPIC_API_KEY" in str(info.value) and server.url in str(info.value)
    assert "invalid x-api-key" in str(info.value)


async def test_400_is_not_retried(fake_server):
    server = fake_server([error(400, "invalid_request_error", "max_tokens: too large")])
    p = provider(server)
    with pytest.raises(ProviderError) as info:
        await call(p)
    await p.aclose()
    assert len(server.requests) == 1
    assert not info.value.retryable and info.value.status == 400
    assert "max_tokens: too large" in str(info.value)


def test_missing_key_names_the_variable():
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider(model=None, api_key=None, base_url=None, timeout=5)
