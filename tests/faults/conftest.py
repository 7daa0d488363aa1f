"""Fixtures for the fault suite: a fake OpenAI-compatible server (see fault_helpers.FakeOpenAI)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fault_helpers import FakeOpenAI
from http_fakes import servers  # type: ignore[import-not-found]


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeOpenAI]]:
    """`fake_openai(behaviour)` starts a server; OPENAI_API_KEY is a dummy; every server stops at teardown."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-for-tests")
    with servers(FakeOpenAI) as start:
        yield start
