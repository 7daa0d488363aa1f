"""Fixtures for the fault suite: a fake OpenAI-compatible server (see fault_helpers.FakeOpenAI)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fault_helpers import Behaviour, FakeOpenAI


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeOpenAI]]:
    """`fake_openai(behaviour)` starts a server; OPENAI_API_KEY is a dummy; every server stops at teardown."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-for-tests")
    started: list[FakeOpenAI] = []

    def start(behaviour: Behaviour | None = None) -> FakeOpenAI:
        server = FakeOpenAI(behaviour)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
