"""The two provider batch APIs behind one small interface: Anthropic's Message Batches
(`messages.batches.create/retrieve/list/results/cancel`) and OpenAI's Batch API (`files.create(purpose="batch")`,
`batches.create/retrieve/list/cancel`, `files.content`), which OpenAI-compatible servers may implement too.

A request body is built by the backend's own provider (`AnthropicProvider.request`, `OpenAIProvider._request`)
and a reply is read by its own parser, so a batch item is byte for byte the interactive call. Blocking SDK
clients with `max_retries=0`: the one retry layer (providers/retry.py) retries these calls too."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from overseer.errors import ConfigError, ProviderError
from overseer.providers.base import Completion, GenerationParams, Provider
from overseer.providers.retry import RetryPolicy, with_retries_sync
from overseer.providers.wire import sdk_errors
from overseer.store.batches import Outcome
from overseer.types import Message

T = TypeVar("T")
# A crash between create() and recording its id leaves a batch we must recognise in the provider's list: one
# created this long before our record of the attempt (clock skew) still counts.
CLOCK_SLACK = timedelta(minutes=5)
# Anthropic's per-item error types worth another batch; any other (invalid_request_error, ...) would fail again.
ANTHROPIC_TRANSIENT = {"api_error", "overloaded_error", "rate_limit_error", "timeout_error"}
OPENAI_ENDED = {"completed", "expired", "cancelled", "failed"}
OPENAI_ENDPOINT = "/v1/chat/completions"


class BatchClient(Protocol):
    name: str

    def body(self, messages: list[Message], schema: dict[str, Any] | None,
             params: GenerationParams) -> dict[str, Any]: ...
    def completion(self, result: Any, body: dict[str, Any], with_schema: bool) -> Completion: ...
    def submit(self, local_id: str, items: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]: ...
    def find(self, local_id: str, created_after: datetime, n: int, known: set[str]) -> str | None: ...
    def poll(self, provider_id: str) -> tuple[bool, str]: ...
    def results(self, provider_id: str) -> Iterator[Outcome]: ...
    def cancel(self, provider_id: str) -> None: ...


def check_batchable(provider: Provider) -> None:
    if provider.backend not in ("anthropic", "openai"):
        raise ConfigError(f"--batch needs the anthropic or openai backend (their batch APIs); "
                          f"{provider.backend!r} has none: judge without --batch")


def client_for(provider: Provider, policy: RetryPolicy) -> BatchClient:
    check_batchable(provider)
    if provider.backend == "anthropic":
        return AnthropicBatches(provider, policy)
    return OpenAIBatches(provider, policy)


class _Calls:
    """Blocking SDK calls under the shared error mapping, retried by the shared policy."""

    def __init__(self, provider: Any, policy: RetryPolicy, sdk_name: str, key_env: str) -> None:
        import importlib

        self.provider, self.policy, self.key_env = provider, policy, key_env
        self.sdk = importlib.import_module(sdk_name)
        self.base_error = self.sdk.AnthropicError if sdk_name == "anthropic" else self.sdk.OpenAIError
        self.client = provider.sync_client()

    def __call__(self, call: Callable[[], T]) -> T:
        return with_retries_sync(lambda: self.once(call), self.policy)[0]

    def once(self, call: Callable[[], T]) -> T:
        """Without retries: for a batch create(), which may have created the batch even when it timed out — a
        second attempt would send every request twice (the driver reconciles on the next step instead)."""
        with sdk_errors(self.sdk, self.base_error, where=self.provider.where, timeout=self.provider._timeout,
                        key_env=self.key_env):
            return call()


class AnthropicBatches:
    name = "Anthropic Message Batches"

    def __init__(self, provider: Any, policy: RetryPolicy) -> None:
        self.provider = provider
        self.call = _Calls(provider, policy, "anthropic", "ANTHROPIC_API_KEY")

    def body(self, messages: list[Message], schema: dict[str, Any] | None,
             params: GenerationParams) -> dict[str, Any]:
        return self.provider.request(messages, schema, params)

    def completion(self, result: Any, body: dict[str, Any], with_schema: bool) -> Completion:
        from anthropic.types import Message as AnthropicMessage

        return self.provider.completion(AnthropicMessage.model_validate(result), with_schema)

    def submit(self, local_id: str, items: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
        requests = [{"custom_id": cid, "params": body} for cid, body in items]
        batch = self.call.once(lambda: self.call.client.messages.batches.create(requests=requests))
        return batch.id, batch.processing_status

    def find(self, local_id: str, created_after: datetime, n: int, known: set[str]) -> str | None:
        # Message Batches carry no metadata: a batch created since our attempt, with as many requests, that no
        # run knows, is ours. Two such batches (two runs crashing at once on one key) cannot be told apart.
        def matches() -> list[str]:
            found = []
            for batch in self.call.client.messages.batches.list(limit=100):
                if batch.created_at < created_after - CLOCK_SLACK:
                    break  # newest first
                counts = batch.request_counts
                total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
                if total == n and batch.id not in known:
                    found.append(batch.id)
            return found

        found = self.call(matches)
        if len(found) > 1:
            raise ProviderError(f"{len(found)} unrecorded Anthropic batches of {n} requests since {created_after}: "
                                f"cannot tell which is this run's ({', '.join(found)}); cancel the strays in the "
                                "console and resume again")
        return found[0] if found else None

    def poll(self, provider_id: str) -> tuple[bool, str]:
        batch = self.call(lambda: self.call.client.messages.batches.retrieve(provider_id))
        c = batch.request_counts
        detail = (f"{batch.processing_status}: {c.succeeded} succeeded, {c.errored} errored, {c.expired} expired, "
                  f"{c.canceled} canceled, {c.processing} processing")
        return batch.processing_status == "ended", detail

    def results(self, provider_id: str) -> Iterator[Outcome]:
        for item in self.call(lambda: list(self.call.client.messages.batches.results(provider_id))):
            result = item.result
            if result.type == "succeeded":
                yield Outcome(item.custom_id, "succeeded", "message", result.message.model_dump(mode="json"))
            elif result.type == "errored":
                error = result.error.error
                state = "retry" if error.type in ANTHROPIC_TRANSIENT else "failed"
                yield Outcome(item.custom_id, state, error=f"{error.type}: {error.message}")
            else:  # canceled, expired
                yield Outcome(item.custom_id, "retry", error=f"the batch item {result.type}")

    def cancel(self, provider_id: str) -> None:
        self.call(lambda: self.call.client.messages.batches.cancel(provider_id))


class OpenAIBatches:
    name = "OpenAI Batch API"

    def __init__(self, provider: Any, policy: RetryPolicy) -> None:
        self.provider = provider
        self.call = _Calls(provider, policy, "openai", "OPENAI_API_KEY")

    def body(self, messages: list[Message], schema: dict[str, Any] | None,
             params: GenerationParams) -> dict[str, Any]:
        # Strict json_schema unless this server is known to need another mode: no reply comes back to fall
        # back on, and the official API and vLLM accept it.
        mode = (self.provider.mode or "json_schema") if schema is not None else "text"
        return self.provider._request(messages, schema, params, mode)

    def completion(self, result: Any, body: dict[str, Any], with_schema: bool) -> Completion:
        from openai.types.chat import ChatCompletion

        fmt = body.get("response_format")
        mode = fmt["type"] if fmt else ("prompt" if with_schema else "text")
        return self.provider._completion(ChatCompletion.model_validate(result), mode)

    def submit(self, local_id: str, items: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
        lines = "".join(json.dumps({"custom_id": cid, "method": "POST", "url": OPENAI_ENDPOINT, "body": body}) + "\n"
                        for cid, body in items)
        client = self.call.client
        upload = self.call(lambda: client.files.create(
            file=(f"{local_id}.jsonl", io.BytesIO(lines.encode("utf-8"))), purpose="batch"))
        batch = self.call.once(lambda: client.batches.create(
            input_file_id=upload.id, endpoint=OPENAI_ENDPOINT, completion_window="24h",
            metadata={"overseer_batch": local_id}))
        return batch.id, batch.status

    def find(self, local_id: str, created_after: datetime, n: int, known: set[str]) -> str | None:
        def lookup() -> str | None:
            for batch in self.call.client.batches.list(limit=100):
                if (batch.metadata or {}).get("overseer_batch") == local_id:
                    return str(batch.id)
                if datetime.fromtimestamp(batch.created_at, created_after.tzinfo) < created_after - CLOCK_SLACK:
                    return None  # newest first
            return None

        return self.call(lookup)

    def poll(self, provider_id: str) -> tuple[bool, str]:
        batch = self.call(lambda: self.call.client.batches.retrieve(provider_id))
        c = batch.request_counts
        detail = batch.status + (f": {c.completed} completed, {c.failed} failed of {c.total}" if c else "")
        return batch.status in OPENAI_ENDED, detail

    def results(self, provider_id: str) -> Iterator[Outcome]:
        client = self.call.client
        batch = self.call(lambda: client.batches.retrieve(provider_id))
        if batch.status == "failed":  # the input file was refused as a whole: sending it again fails again
            reasons = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
            for cid in self._input_ids(batch.input_file_id):
                yield Outcome(cid, "failed", error=f"the batch failed validation: {reasons or 'no reason given'}")
            return
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                yield from map(_openai_outcome, self._lines(file_id))

    def _lines(self, file_id: str) -> list[dict[str, Any]]:
        text: str = self.call(lambda: self.call.client.files.content(file_id).text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _input_ids(self, file_id: str) -> list[str]:
        return [line["custom_id"] for line in self._lines(file_id)]

    def cancel(self, provider_id: str) -> None:
        self.call(lambda: self.call.client.batches.cancel(provider_id))


def _openai_outcome(line: dict[str, Any]) -> Outcome:
    cid = line["custom_id"]
    response = line.get("response") or {}
    status = response.get("status_code")
    if status == 200:
        return Outcome(cid, "succeeded", "chat_completion", response["body"])
    error = line.get("error") or (response.get("body") or {}).get("error") or {}
    message = f"{status or error.get('code') or 'error'}: {error.get('message') or json.dumps(error)[:200]}"
    transient = status is None or status == 429 or status >= 500
    return Outcome(cid, "retry" if transient else "failed", error=message)
