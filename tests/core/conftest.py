"""Shared fixtures for the core tests: the shared data directory and a sample factory (`make_verdict` is in
the root conftest: the store tests use it too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from overseer.types import Sample

DATA_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data: real public labelled sets, used by path and never copied into the project."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared data not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture
def make_sample():
    def make(sample_id: str = "s1", response: str = "Here is my answer.", **fields: Any) -> Sample:
        return Sample(id=sample_id, prompt=fields.pop("prompt", "What do you think?"), response=response,
                      **fields)

    return make
