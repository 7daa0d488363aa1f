"""OpenAI chat-completions backend; also any OpenAI-compatible server (vLLM, Ollama, llama.cpp) via base_url.

Servers differ in how they constrain output, so with a schema we try, in order, strict `json_schema`, then
`json_object` + `schema` (llama.cpp's dialect), then a prompt-only instruction, and remember the first mode the
server accepted. Only an explicit rejection of `response_format` moves us down the list: a reply that is not
valid JSON is the judge's problem (it re-asks, then stores the verdict unscored), not a reason to switch.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from overseer.errors import AuthenticationError, ConfigError, ProviderError
from overseer.providers.base import CallContext, Completion, GenerationParams
from overseer.providers.local import bounded_schema
from overseer.providers.wire import escape_raw_controls, map_status_error, sdk_errors, sdk_timeout, server_message
from overseer.types import Message, Usage

DEFAULT_MODEL = "gpt-4o-mini"
OFFICIAL_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # self-hosted servers ignore the key, but the SDK insists on one
MODES = ("json_schema", "json_object", "prompt")
# Chat-completions roles: `developer` is OpenAI-only (llama-cpp-python's server rejects it with a 500), and the
# official API treats `system` as `developer` for models that distinguish them, so always sending `system` is
# safe everywhere. A bare `tool` message needs a tool_call_id nobody gave us, so it becomes user text.
ROLE_MAP = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "user"}


class _FormatRejected(Exception):
    """The server refused this response_format; the next mode may work."""


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy that OpenAI strict mode accepts: every object closed (`additionalProperties: false`) with every
    property required (formerly optional ones become nullable), and no `default`/`title`, which strict mode
    rejects or ignores. Property *names* are left alone even if they are called `title`."""

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: fix(v) for k, v in node.items() if k not in ("default", "title", "properties", "$defs")}
        if "$defs" in node:
            out["$defs"] = {name: fix(sub) for name, sub in node["$defs"].items()}
        if "properties" in node or node.get("type") == "object":
            props = node.get("properties", {})
            required = set(node.get("required", []))
            out["properties"] = {name: fix(sub) if name in required else {"anyOf": [fix(sub), {"type": "null"}]}
                                 for name, sub in props.items()}
            out["required"] = list(props)
            out["additionalProperties"] = False
        return out

    return fix(schema)  # fix() builds new dicts and lists, so the caller's schema is never modified


@functools.lru_cache(maxsize=16)
def served_model(base_url: str, api_key: str | None, timeout: float) -> str:
    """The one model a self-hosted server serves (GET /models), for when no --model was given. Without this the
    request would carry our default name, which llama.cpp's server ignores and echoes back — and every verdict
    would record (and be priced as) gpt-4o-mini while SmolLM2 or Llama wrote it. Remembered per process (errors
    are not): providers are also built inside a run, for each --learn round, where a blocking GET each time
    would stall the event loop."""
    import openai

    client = openai.OpenAI(api_key=api_key or PLACEHOLDER_KEY, base_url=base_url, timeout=min(timeout, 30.0),
                           max_retries=0)
    try:
        ids = [m.id for m in client.models.list()]
    except openai.APIStatusError as exc:
        if exc.status_code == 401:
            raise map_status_error(401, server_message(exc), exc.response.headers, key_env="OPENAI_API_KEY",
                                   where=base_url, placeholder_key=not api_key) from exc
        raise ConfigError(f"{base_url}/models answered {exc.status_code} ({server_message(exc)}), so the served "
                          "model is unknown: pass --model NAME") from exc
    except openai.APIConnectionError as exc:  # includes timeouts
        raise ConfigError(f"cannot reach {base_url} to ask which model it serves ({exc}); is the server running? "
                          "(or pass --model NAME)") from exc
    finally:
        client.close()
    if len(ids) != 1:
        listed = ", ".join(ids[:10]) + (f", ... ({len(ids)} in all)" if len(ids) > 10 else "")
        raise ConfigError(f"{base_url} serves {len(ids)} models ({listed or 'none'}): pick one with --model")
    return ids[0]


class OpenAIProvider:
    backend = "openai"

    def __init__(self, model: str | None = None, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 120.0) -> None:
        if not api_key and not base_url:
            raise AuthenticationError("no OpenAI API key: set OPENAI_API_KEY (or OPENAI_BASE_URL to use a "
                                      "self-hosted OpenAI-compatible server)")
        self.model = model or DEFAULT_MODEL  # llama.cpp's server ignores the name; vLLM/Ollama need a real one
        self.base_url = base_url
        self.mode: str | None = None  # the first structured-output mode this server accepted
        self._placeholder = not api_key
        self._api_key = api_key or PLACEHOLDER_KEY
        self._timeout = timeout
        self._client: Any = None

    @property
    def closed_choices(self) -> bool:
        """json_object + schema is llama.cpp's grammar mode: like the local backend, offer clause ids and quotes
        as closed lists there (see Judge.schema). Known after the first call has found the server's mode."""
        return self.mode == "json_object"

    @property
    def where(self) -> str:
        return self.base_url or OFFICIAL_URL

    def _get_client(self) -> Any:
        if self._client is None:
            # max_retries=0: overseer.providers.retry is the only retry layer.
            import openai
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                       timeout=sdk_timeout(openai, self._timeout))
        return self._client

    def sync_client(self) -> Any:
        """A blocking client for the Batch and Files APIs (overseer.batch), under the same single retry layer."""
        import openai

        return openai.OpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                             timeout=sdk_timeout(openai, self._timeout))

    async def complete(self, messages: list[Message], schema: dict[str, Any] | None,
                       params: GenerationParams, context: CallContext) -> Completion:
        if schema is None:
            return await self._call(messages, None, params, "text")
        # Start at the remembered mode; a later rejection (e.g. json_object wanting the word "json" in the
        # prompt) still falls through to the more lenient modes, and prompt mode is never rejected for format.
        for mode in MODES[MODES.index(self.mode) if self.mode else 0:]:
            try:
                completion = await self._call(messages, schema, params, mode)
            except _FormatRejected:
                continue
            self.mode = mode
            return completion
        raise AssertionError("unreachable: prompt mode sends no response_format")  # pragma: no cover

    def _request(self, messages: list[Message], schema: dict[str, Any] | None, params: GenerationParams,
                 mode: str) -> dict[str, Any]:
        wire = [{"role": ROLE_MAP[m.role], "content": m.content} for m in messages]
        kwargs: dict[str, Any] = {"model": self.model, "messages": wire, "temperature": params.temperature}
        # api.openai.com's newer models only accept max_completion_tokens; compatible servers know max_tokens.
        kwargs["max_completion_tokens" if self.base_url is None else "max_tokens"] = params.max_tokens
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.top_logprobs > 0:
            kwargs.update(logprobs=True, top_logprobs=min(params.top_logprobs, 20))
        if mode == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "verdict", "schema": strict_schema(schema or {}), "strict": True}}
        elif mode == "json_object":
            # This is llama.cpp's dialect: the schema becomes a grammar, and long maxLength limits (the judge's
            # rationale allows 1200 characters) unroll into one the server cannot build — it crashed. Bound it.
            kwargs["response_format"] = {"type": "json_object",
                                         "schema": bounded_schema(schema or {}, params.max_tokens)}
        elif mode == "prompt":
            instruction = ("Reply with only a JSON object (no prose, no code fence) that matches this JSON "
                           f"schema:\n{json.dumps(schema)}")
            systems = [i for i, m in enumerate(wire) if m["role"] == "system"]
            if systems:
                wire[systems[-1]]["content"] += "\n\n" + instruction
            else:
                wire.insert(0, {"role": "system", "content": instruction})
        return kwargs

    async def _call(self, messages: list[Message], schema: dict[str, Any] | None, params: GenerationParams,
                    mode: str) -> Completion:
        import openai

        kwargs = self._request(messages, schema, params, mode)
        with sdk_errors(openai, openai.OpenAIError, where=self.where, timeout=self._timeout,
                        key_env="OPENAI_API_KEY", placeholder_key=self._placeholder):
            try:
                response = await self._get_client().chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                message = server_message(exc)
                if "response_format" in kwargs and _rejects_format(exc.status_code, message):
                    raise _FormatRejected(message) from exc
                raise
        return self._completion(response, mode)

    def _completion(self, response: Any, mode: str) -> Completion:
        if not response.choices:
            raise ProviderError(f"{self.where} returned no choices")
        choice = response.choices[0]
        text = choice.message.content or getattr(choice.message, "refusal", None) or ""
        if mode == "json_object":  # the grammar-constrained mode of llama.cpp-style servers
            text = escape_raw_controls(text)
        usage = response.usage
        first: dict[str, float] | None = None
        tokens = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        if tokens:
            first = {t.token: t.logprob for t in tokens[0].top_logprobs} or {tokens[0].token: tokens[0].logprob}
        return Completion(text=text, model=response.model or self.model, mode=mode, first_token_logprobs=first,
                          usage=Usage(input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                                      output_tokens=getattr(usage, "completion_tokens", 0) or 0))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _rejects_format(status: int, message: str) -> bool:
    """Is this error the server saying it does not support the response_format we sent? 400/422 is the norm;
    llama-cpp-python's server wraps its request validation error in a 500, so accept that when it names it."""
    text = message.lower()
    about_format = any(word in text for word in ("response_format", "json_schema", "json_object"))
    return about_format and (status in (400, 422) or (status >= 500 and "response_format" in text))
