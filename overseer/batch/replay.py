"""Batch judging by replay: the judges run exactly as they do interactively, but their provider answers from the
run store. A call whose reply a finished batch brought back is answered with it; a call nobody has asked yet is
written down for the next batch and the sample's judging stops there (`BatchPending`), to be replayed from the
start once that batch ends. So the rendered prompts, schemas, cache keys, re-asks, Betley's second prompt and any
further pass are the interactive code's own — a later call simply lands in a later batch round."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from overseer.batch.clients import BatchClient
from overseer.errors import ProviderError
from overseer.providers.base import CallContext, Completion, GenerationParams, Provider
from overseer.store.batches import BatchRequest
from overseer.types import Message, Verdict


class BatchPending(Exception):  # noqa: N818 — not an error: the answer is in a batch that has not ended
    """This call's reply is not in yet; the sample is judged again when it is. Not a ProviderError, so neither
    the retry layer nor the judge's error handling catches it."""


def custom_id(judge_id: str, sample_id: str, body: dict[str, Any]) -> str:
    """Stable across processes and days (the same call always gets the same id, so a resumed run finds it), and
    within both APIs' limits (Anthropic: 1–64 characters of [A-Za-z0-9_-])."""
    blob = json.dumps([judge_id, sample_id, body], sort_keys=True, ensure_ascii=False)
    return "o-" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


@dataclass
class Ledger:
    """The run's recorded requests (loaded once per pass) and the new ones this pass found."""

    known: dict[str, BatchRequest]
    round: int
    new: dict[str, BatchRequest] = field(default_factory=dict)
    interactive: bool = False  # --retry interactive: a request the batches gave up on is asked directly
    answered: dict[str, Completion] = field(default_factory=dict)  # interactive answers, for the store


class BatchProvider:
    """Stands in for a judge's provider during a batch pass; everything but `complete` is the real provider's,
    so `Judge.cache_key` and `Judge.schema` see the same backend, model, base URL and modes."""

    def __init__(self, inner: Provider, judge_id: str, client: BatchClient, ledger: Ledger) -> None:
        self.inner, self.judge_id, self.client, self.ledger = inner, judge_id, client, ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def complete(self, messages: list[Message], schema: dict[str, Any] | None,
                       params: GenerationParams, context: CallContext) -> Completion:
        body = self.client.body(messages, schema, params)
        cid = custom_id(self.judge_id, context.sample_id, body)
        request = self.ledger.known.get(cid)
        if request is None:
            self.ledger.new.setdefault(cid, BatchRequest(cid, self.judge_id, context.sample_id, self.ledger.round,
                                                         body, "pending"))
            raise BatchPending(cid)
        if request.state == "succeeded":
            if request.result_kind == "completion":
                return Completion.model_validate(request.result)
            return self.client.completion(request.result, body, schema is not None)
        if request.state == "failed":
            raise ProviderError(f"batch request {cid} failed: {request.error}")
        if request.state == "retry" and self.ledger.interactive and request.batch_id is None:
            completion = await self.inner.complete(messages, schema, params, context)
            self.ledger.answered[cid] = completion
            return completion
        raise BatchPending(cid)

    async def aclose(self) -> None:
        await self.inner.aclose()


class PassCache:
    """The verdict cache seen by a batch pass: reads are the store's, but a verdict is written only once its
    sample's result is committed. Otherwise a verdict replayed in this pass for a sample still waiting on another
    judge would, next pass, come back as a free cache hit instead of the batch call it was."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.buffer: dict[str, Verdict] = {}

    def get(self, key: str) -> Verdict | None:
        return self.buffer.get(key) or self.store.get(key)

    def put(self, key: str, verdict: Verdict) -> None:
        self.buffer[key] = verdict

    def commit(self) -> None:
        for key, verdict in self.buffer.items():
            self.store.put(key, verdict)
        self.buffer.clear()

    def discard(self) -> None:
        self.buffer.clear()
