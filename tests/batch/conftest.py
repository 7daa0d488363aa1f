"""Fixtures for the batch tests: a fake batch API (batch_fakes.FakeBatchAPI) with the keys pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from batch_fakes import FakeBatchAPI, env_for
from http_fakes import servers  # type: ignore[import-not-found]


@pytest.fixture
def fake_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeBatchAPI]]:
    """`fake_batches(**options)` starts a fake; the env's keys and Anthropic URL point at the last one started."""

    def start(**options: Any) -> FakeBatchAPI:
        fake = launch()
        for name, value in options.items():  # polls_to_end, fate, reply
            setattr(fake, name, value)
        for key, value in env_for(fake).items():
            monkeypatch.setenv(key, value)
        return fake

    with servers(FakeBatchAPI) as launch:
        yield start
