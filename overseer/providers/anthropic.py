"""Anthropic Messages API backend. A schema is enforced by forcing one tool call whose input_schema is the
schema: the tool input is the verdict, so the model cannot wrap it in prose."""

from __future__ import annotations

import json
from typing import Any

from overseer.errors import AuthenticationError
from overseer.providers.base import CallContext, Completion, GenerationParams
from overseer.providers.wire import sdk_errors, sdk_timeout
from overseer.types import Message, Usage

DEFAULT_MODEL = "claude-sonnet-4-5"
OFFICIAL_URL = "https://api.anthropic.com"
TOOL_NAME = "record_verdict"
TOOL_DESCRIPTION = "Record your verdict. Call this exactly once; its input is the complete verdict."


def to_wire(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, alternating user/assistant turns). The API has no system/developer/tool turns: the first
    two go to the `system` parameter, tool output is shown as user text; consecutive same-role turns merge,
    because the API rejects two user (or two assistant) turns in a row."""
    system = "\n\n".join(m.content for m in messages if m.role in ("system", "developer"))
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            continue
        role = "assistant" if m.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + m.content
        else:
            turns.append({"role": role, "content": m.content})
    if not turns or turns[0]["role"] != "user":
        # The conversation must open with a user turn; an empty one is rejected, so say something neutral.
        turns.insert(0, {"role": "user", "content": "(start of conversation)"})
    return system, turns


class AnthropicProvider:
    backend = "anthropic"

    def __init__(self, model: str | None = None, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 120.0) -> None:
        if not api_key:
            raise AuthenticationError("no Anthropic API key: set ANTHROPIC_API_KEY")
        self.model = model or DEFAULT_MODEL
        self.base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._client: Any = None

    @property
    def where(self) -> str:
        return self.base_url or OFFICIAL_URL

    def _get_client(self) -> Any:
        if self._client is None:
            # max_retries=0: overseer.providers.retry is the only retry layer.
            import anthropic
            from anthropic import AsyncAnthropic

            self._client = AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                          timeout=sdk_timeout(anthropic, self._timeout))
        return self._client

    def request(self, messages: list[Message], schema: dict[str, Any] | None,
                params: GenerationParams) -> dict[str, Any]:
        """The Messages API parameters of one call: sent as is interactively, and as a batch item's `params`."""
        system, turns = to_wire(messages)
        # No temperature/seed/logprobs: API version 2026-10-21 (what SDK 2.x sends) rejects sampling parameters
        # with a 400 even at their defaults, and the SDK no longer accepts them; there never were seed/logprobs.
        kwargs: dict[str, Any] = {"model": self.model, "messages": turns, "max_tokens": params.max_tokens}
        if system:
            kwargs["system"] = system
        if schema is not None:
            kwargs["tools"] = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": schema}]
            kwargs["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        return kwargs

    def sync_client(self) -> Any:
        """A blocking client for the Message Batches API (overseer.batch), under the same single retry layer."""
        import anthropic

        return anthropic.Anthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                   timeout=sdk_timeout(anthropic, self._timeout))

    async def complete(self, messages: list[Message], schema: dict[str, Any] | None,
                       params: GenerationParams, context: CallContext) -> Completion:
        import anthropic

        kwargs = self.request(messages, schema, params)
        # 529 overloaded is a 5xx, so it maps to a transient error with the rest.
        with sdk_errors(anthropic, anthropic.AnthropicError, where=self.where, timeout=self._timeout,
                        key_env="ANTHROPIC_API_KEY"):
            response = await self._get_client().messages.create(**kwargs)
        return self.completion(response, schema is not None)

    def completion(self, response: Any, with_schema: bool) -> Completion:
        """A Messages API reply (interactive, or a batch item's `message`) as a Completion."""
        blocks = list(response.content or [])
        tool_use = next((b for b in blocks if b.type == "tool_use" and b.name == TOOL_NAME), None)
        if with_schema and tool_use is not None:
            text, mode = json.dumps(tool_use.input), "tool"
        else:
            # No tool call despite tool_choice (e.g. a refusal): hand back the prose; the judge leaves it unscored.
            text = "".join(b.text for b in blocks if b.type == "text")
            mode = "tool" if with_schema else "text"
        usage = response.usage
        return Completion(text=text, model=response.model or self.model, mode=mode,
                          usage=Usage(input_tokens=getattr(usage, "input_tokens", 0) or 0,
                                      output_tokens=getattr(usage, "output_tokens", 0) or 0))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
