"""Shared fixtures for the core tests: the shared data directory and a sample factory (`make_verdict` is in
the root conftest: the store tests use it too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shared_data import require_shared_data

from overseer.types import Sample


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (see tests/conftest.py: skips locally, fails under CI=true)."""
    return require_shared_data()


@pytest.fixture
def make_sample():
    def make(sample_id: str = "s1", response: str = "Here is my answer.", **fields: Any) -> Sample:
        return Sample(id=sample_id, prompt=fields.pop("prompt", "What do you think?"), response=response,
                      **fields)

    return make
