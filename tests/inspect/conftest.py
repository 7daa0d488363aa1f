"""Fixtures for the Inspect AI tests. Without the `inspect` extra they skip, except under CI=true, where a skip
would hide that the extra is missing from CI's install."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspect_helpers import require_inspect, run_eval


@pytest.fixture(scope="session")
def inspect_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a .eval log: 3 samples x 2 epochs, mockllm answers, Inspect's `includes` scores."""
    require_inspect()
    log = run_eval(tmp_path_factory.mktemp("inspect-logs"))
    return Path(log.location)


@pytest.fixture(autouse=True)
def _inspect_installed() -> None:
    require_inspect()
