"""The one provider interface: messages + output schema → raw reply text + usage.

Parsing and validating the reply is the judge's job (it needs the sample to check evidence quotes), so every
backend returns the raw text it got; a backend that can constrain output to the schema does so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from overseer.types import Message, Record, Usage


class GenerationParams(Record):
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = 0
    top_logprobs: int = 0  # >0 asks for the first token's top logprobs (Betley's probability-weighted score)


class Completion(Record):
    text: str
    usage: Usage
    model: str
    mode: str  # how the output was constrained: json_schema | json_object | tool | grammar | prompt | text
    first_token_logprobs: dict[str, float] | None = None


@dataclass(frozen=True)
class CallContext:
    """Routing facts about one call, never its answer. `sample_id` names the sample (or job, e.g. "reflection")
    the call is for: a key, not content. `response` and `clause_ids` are what the rendered prompt already shows
    the model (the response inside its delimiters, the clause headings), given unrendered so the scripted backend
    can quote and cite without parsing a datamarked prompt. Nothing a model would not see in its prompt goes here:
    the scripted backend gets labels and metadata when it is built (`ScriptedProvider(labels=...)`)."""

    sample_id: str = ""
    response: str = ""
    clause_ids: tuple[str, ...] = ()


@runtime_checkable
class Provider(Protocol):
    backend: str  # anthropic | openai | local | scripted
    model: str
    base_url: str | None

    async def complete(self, messages: list[Message], schema: dict[str, Any] | None,
                       params: GenerationParams, context: CallContext) -> Completion:
        """One model call. Raises ProviderError subclasses; never retries itself."""
        ...

    async def aclose(self) -> None:
        """Release network clients or model handles."""
        ...
