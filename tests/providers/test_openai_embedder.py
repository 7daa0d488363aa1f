"""The OpenAI embedder goes through the one retry layer (overseer.providers.retry), with the SDK's own retries off:
a 429 is retried after its Retry-After, a 400 is not retried at all. Counted at a real HTTP server, so a second,
hidden retry layer (the SDK's max_retries) would show up as extra requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from overseer.embeddings import OpenAIEmbedder, make_embedder
from overseer.errors import ProviderError
from overseer.providers.retry import RetryPolicy

EMBEDDINGS = {"object": "list", "model": "emb", "usage": {"prompt_tokens": 2, "total_tokens": 2},
              "data": [{"object": "embedding", "index": 0, "embedding": [3.0, 4.0]},
                       {"object": "embedding", "index": 1, "embedding": [0.0, 2.0]}]}
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.05)


def embedder(monkeypatch: pytest.MonkeyPatch, server: Any) -> OpenAIEmbedder:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    return OpenAIEmbedder("emb", policy=FAST)


def test_registry_makes_an_openai_embedder_with_sdk_retries_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    made = make_embedder("openai:text-embedding-3-small")
    assert made.name == "openai:text-embedding-3-small"
    assert made._client.max_retries == 0  # type: ignore[attr-defined]


def test_429_is_retried_once_after_retry_after(monkeypatch: pytest.MonkeyPatch,
                                                fake_server: Callable[..., Any]) -> None:
    server = fake_server([{"status": 429, "body": {"error": {"message": "slow down"}},
                           "headers": {"retry-after": "1"}}, {"body": EMBEDDINGS}])
    started = time.monotonic()
    vectors = embedder(monkeypatch, server).embed(["a", "b"])
    assert len(server.requests) == 2  # one retry, by our layer only
    assert server.requests[1].at - server.requests[0].at >= 1.0
    assert time.monotonic() - started < 10
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)  # unit rows


def test_400_is_not_retried_and_names_the_endpoint(monkeypatch: pytest.MonkeyPatch,
                                                   fake_server: Callable[..., Any]) -> None:
    server = fake_server([{"status": 400, "body": {"error": {"message": "bad model"}}}])
    with pytest.raises(ProviderError, match="embeddings endpoint.*400.*bad model"):
        embedder(monkeypatch, server).embed(["a"])
    assert len(server.requests) == 1


def test_5xx_stops_after_the_policy_attempts(monkeypatch: pytest.MonkeyPatch,
                                             fake_server: Callable[..., Any]) -> None:
    server = fake_server([{"status": 503, "body": {"error": {"message": "down"}}}])
    with pytest.raises(ProviderError, match="503"):
        embedder(monkeypatch, server).embed(["a"])
    assert len(server.requests) == FAST.max_attempts
