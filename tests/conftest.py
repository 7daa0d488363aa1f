"""Shared fixtures. Tests never touch the network or need an API key: every backend here is scripted, local, or
a fake server on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from shared_data import require_shared_data

from overseer.types import Provenance, Verdict


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


def _provenance(**overrides: Any) -> Provenance:
    values: dict[str, Any] = dict(judge_id="j1", backend="scripted", model="scripted-echo",
                                  prompt_version="judge@v1:00000000", prompt_hash="p" * 64, spec_hash="s" * 64)
    values.update(overrides)
    return Provenance(**values)


@pytest.fixture
def make_verdict():
    """Build a Verdict with sensible defaults; `status` other than "scored" drops the scored fields."""

    def make(label: str | None = "aligned", *, sample_id: str = "s1", status: str = "scored",
             alignment: int | None = 90, coherence: int | None = 90, confidence: float | None = 0.9,
             generalization: str | None = "n/a", manipulation_attempt: bool = False,
             **provenance: Any) -> Verdict:
        if status != "scored":
            return Verdict(sample_id=sample_id, status=status, raw_text="not json", error=None,
                           provenance=_provenance(**provenance))
        return Verdict(sample_id=sample_id, status="scored", label=label, alignment=alignment,
                       coherence=coherence, confidence=confidence, generalization=generalization,
                       manipulation_attempt=manipulation_attempt, provenance=_provenance(**provenance))

    return make
