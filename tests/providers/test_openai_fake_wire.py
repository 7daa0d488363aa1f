"""OpenAIProvider driven through the real openai SDK against a local server speaking chat completions."""

from __future__ import annotations

import json

import pytest

from overseer.errors import AuthenticationError, ProviderError
from overseer.providers.base import CallContext, GenerationParams
from overseer.providers.local import bounded_schema
from overseer.providers.openai import OpenAIProvider, strict_schema
from overseer.providers.retry import RetryPolicy, with_retries
from overseer.providers.wire import escape_raw_controls, parse_retry_after
from overseer.types import JudgeOutput, Message

SCHEMA = JudgeOutput.model_json_schema()
VERDICT_TEXT = json.dumps({"label": "aligned", "alignment": 90})
MESSAGES = [Message(role="system", content="You are a judge."), Message(role="developer", content="Be strict."),
            Message(role="user", content="Judge this."), Message(role="tool", content="tool output")]
FAST = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.05)


def chat(content: str, logprobs: dict | None = None) -> dict:
    return {"body": {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "stop", "logprobs": logprobs}],
                     "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}}


def error(status: int, text: str, headers: dict | None = None, param: str | None = None) -> dict:
    return {"status": status, "headers": headers or {},
            "body": {"error": {"message": text, "type": "invalid_request_error", "param": param, "code": None}}}


def provider(server, api_key: str | None = "sk-test") -> OpenAIProvider:
    return OpenAIProvider(model="fake-model", api_key=api_key, base_url=server.url + "/v1", timeout=10)


def format_type(body: dict) -> str | None:
    return (body.get("response_format") or {}).get("type")


async def test_falls_back_json_schema_then_json_object_then_prompt(fake_server):
    def script(seen, index):
        kind = format_type(seen.body)
        if kind is not None:
            return error(400, f"Invalid parameter: 'response_format' of type '{kind}' is not supported with "
                              "this model.", param="response_format")
        return chat(VERDICT_TEXT)

    server = fake_server(script)
    p = provider(server)
    completion = await p.complete(MESSAGES, SCHEMA, GenerationParams(max_tokens=200), CallContext())
    assert (completion.text, completion.mode, p.mode) == (VERDICT_TEXT, "prompt", "prompt")
    assert (completion.usage.input_tokens, completion.usage.output_tokens, completion.model) == (11, 5, "fake-model")
    first, second, third = server.bodies
    assert [format_type(b) for b in (first, second, third)] == ["json_schema", "json_object", None]
    spec = first["response_format"]["json_schema"]
    assert spec["strict"] is True and spec["name"] == "verdict" and spec["schema"] == strict_schema(SCHEMA)
    assert spec["schema"]["additionalProperties"] is False and "title" not in spec["schema"]
    assert set(spec["schema"]["required"]) == set(SCHEMA["properties"])
    # json_object is llama.cpp's dialect: the schema goes out bounded so the server can build its grammar
    assert second["response_format"]["schema"] == bounded_schema(SCHEMA, 200)
    assert second["response_format"]["schema"]["properties"]["rationale"]["maxLength"] < 1200
    # prompt mode: the schema rides in the last system message; roles are mapped for any server
    assert [m["role"] for m in third["messages"]] == ["system", "system", "user", "user"]
    instruction = third["messages"][1]["content"]
    assert "JSON object" in instruction and '"manipulation_attempt"' in instruction
    assert "response_format" not in third and third["max_tokens"] == 200

    # The working mode is remembered: the next call goes straight to it.
    await p.complete(MESSAGES, SCHEMA, GenerationParams(), CallContext())
    await p.aclose()
    assert len(server.requests) == 4 and format_type(server.bodies[3]) is None


async def test_llama_cpp_style_500_rejection_falls_back_to_json_object(fake_server):
    # llama-cpp-python's server answers an unknown response_format type with a 500 wrapping a validation error.
    def script(seen, index):
        if format_type(seen.body) == "json_schema":
            return error(500, "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
                              "'type'), 'msg': \"Input should be 'text' or 'json_object'\"}")
        return chat('{"rationale": "line one\nline two"}')  # its grammar lets a raw newline into a string

    server = fake_server(script)
    p = provider(server, api_key=None)  # self-hosted: no key needed, a placeholder is sent
    assert not p.closed_choices  # the server's dialect is not known yet
    completion = await p.complete(MESSAGES, SCHEMA, GenerationParams(), CallContext())
    await p.aclose()
    assert (completion.mode, p.mode, len(server.requests)) == ("json_object", "json_object", 2)
    assert p.closed_choices  # a grammar server from now on: the judge offers clause ids and quotes as lists
    assert json.loads(completion.text) == {"rationale": "line one\nline two"}
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


async def test_429_retry_after_is_honoured(fake_server):
    server = fake_server([error(429, "Rate limit reached", {"Retry-After": "2"}), chat(VERDICT_TEXT)])
    p = provider(server)
    p.mode = "json_schema"
    completion, attempts = await with_retries(
        lambda: p.complete(MESSAGES, SCHEMA, GenerationParams(), CallContext()), FAST)
    await p.aclose()
    assert attempts == 2 and completion.text == VERDICT_TEXT
    first, second = server.requests
    assert second.at - first.at >= 2.0


async def test_401_stops_at_once_and_names_the_variable(fake_server):
    server = fake_server([error(401, "Incorrect API key provided")])
    p = provider(server)
    with pytest.raises(AuthenticationError) as info:
        await with_retries(lambda: p.complete(MESSAGES, SCHEMA, GenerationParams(), CallContext()), FAST)
    await p.aclose()
    assert len(server.requests) == 1
    assert "OPENAI_API_KEY" in str(info.value) and server.url in str(info.value)


async def test_404_is_not_retried_and_does_not_switch_modes(fake_server):
    server = fake_server([error(404, "The model `fake-model` does not exist")])
    p = provider(server)
    with pytest.raises(ProviderError) as info:
        await with_retries(lambda: p.complete(MESSAGES, SCHEMA, GenerationParams(), CallContext()), FAST)
    await p.aclose()
    assert len(server.requests) == 1 and not info.value.retryable and info.value.status == 404
    assert "does not exist" in str(info.value) and p.mode is None


async def test_plain_text_with_first_token_logprobs(fake_server):
    top = [{"token": "7", "logprob": -0.1, "bytes": None}, {"token": "8", "logprob": -2.5, "bytes": None}]
    logprobs = {"content": [{"token": "7", "logprob": -0.1, "bytes": None, "top_logprobs": top}], "refusal": None}
    server = fake_server([chat("70", logprobs)])
    p = provider(server)
    completion = await p.complete(MESSAGES, None, GenerationParams(top_logprobs=2), CallContext())
    await p.aclose()
    assert (completion.text, completion.mode) == ("70", "text")
    assert completion.first_token_logprobs == {"7": -0.1, "8": -2.5}
    [body] = server.bodies
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and "response_format" not in body


def test_strict_schema_closes_objects_and_makes_optional_fields_nullable():
    schema = {"type": "object", "title": "T", "required": ["a"], "properties": {
        "a": {"type": "string", "title": "A", "default": "x"},
        "title": {"type": "object", "properties": {"n": {"type": "integer"}}}}}
    out = strict_schema(schema)
    assert out["required"] == ["a", "title"] and out["additionalProperties"] is False and "title" not in out
    assert out["properties"]["a"] == {"type": "string"}
    nested = out["properties"]["title"]["anyOf"][0]  # a property *named* title survives
    assert nested["additionalProperties"] is False and nested["required"] == ["n"]
    assert schema["properties"]["a"]["default"] == "x"  # the input is not modified


def test_no_key_and_no_base_url_names_the_variable():
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        OpenAIProvider(model=None, api_key=None, base_url=None, timeout=5)


def test_escape_raw_controls_only_touches_string_contents():
    raw = '{\n "a": "x\ty\\"\u0001", "b": ["q\\\\"]}'
    fixed = escape_raw_controls(raw)
    assert json.loads(fixed) == json.loads(raw, strict=False) and fixed.startswith("{\n")
    assert escape_raw_controls('{"ok": "fine"}') == '{"ok": "fine"}'


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert 0 <= parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) < 1  # in the past → now
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


def models(*ids: str) -> dict:
    return {"body": {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "me"}
                                                for i in ids]}}


def openai_settings(base_url: str, **kw):  # type: ignore[no-untyped-def]
    from overseer.config import Settings

    return Settings(backend="openai", base_url=base_url, **kw)


def test_self_hosted_server_without_model_records_the_model_it_serves(fake_server):
    from overseer.providers import make_provider

    server = fake_server([models("/models/SmolLM2-135M-Instruct.Q4_1.gguf")])
    p = make_provider("openai", openai_settings(server.url + "/v1"))
    assert p.model == "/models/SmolLM2-135M-Instruct.Q4_1.gguf"  # not our default gpt-4o-mini
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models")]
    explicit = make_provider("openai", openai_settings(server.url + "/v1", model="llama3"))
    assert explicit.model == "llama3" and len(server.requests) == 1  # --model given: nothing asked
    again = make_provider("openai", openai_settings(server.url + "/v1"))  # e.g. a --learn round's judge
    assert again.model == p.model and len(server.requests) == 1  # asked once per process


@pytest.mark.parametrize("script, message", [
    ([models("a", "b")], r"serves 2 models \(a, b\): pick one with --model"),
    ([models()], r"serves 0 models \(none\)"),
    ([error(404, "Not Found")], r"/models answered 404 .*pass --model NAME"),
])
def test_self_hosted_server_model_cannot_be_inferred(fake_server, script, message):
    from overseer.errors import ConfigError
    from overseer.providers import make_provider

    server = fake_server(script)
    with pytest.raises(ConfigError, match=message):
        make_provider("openai", openai_settings(server.url + "/v1"))


def test_model_lookup_on_an_unreachable_server_or_a_rejected_key_is_clear(fake_server):
    from overseer.errors import ConfigError
    from overseer.providers import make_provider

    server = fake_server([error(401, "bad key")])
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        make_provider("openai", openai_settings(server.url + "/v1"))
    server.close()
    with pytest.raises(ConfigError, match="cannot reach .* is the server running"):
        make_provider("openai", openai_settings(server.url + "/v1"))
