"""Shared fixtures for the core tests: the shared data directory and small record factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shared_data import require_shared_data

from overseer.types import Provenance, Sample, Verdict


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (see tests/conftest.py: skips locally, fails under CI=true)."""
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


@pytest.fixture
def make_sample():
    def make(sample_id: str = "s1", response: str = "Here is my answer.", **fields: Any) -> Sample:
        return Sample(id=sample_id, prompt=fields.pop("prompt", "What do you think?"), response=response,
                      **fields)

    return make
