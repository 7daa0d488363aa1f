"""Shared fixtures. Tests never touch the network or need an API key: every backend here is scripted, local, or
a fake server on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shared_data import require_shared_data


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real keys must never leak into a test (nor make one pass by accident)."""
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OVERSEER_HOME", "OVERSEER_WORKSPACE",
                "OVERSEER_BACKEND", "OVERSEER_BASE_URL", "ANTHROPIC_BASE_URL"):
        if not os.environ.get("OVERSEER_LIVE_TESTS"):
            monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True)
def _forget_served_models() -> None:
    """Fake servers reuse ports across tests; one test's answer to GET /models must not serve the next."""
    from overseer.providers.openai import served_model

    served_model.cache_clear()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()
