"""Where the real public data sets live, and what a test does when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def require_shared_data() -> Path:
    """../shared/data: real public labelled sets, used by path and never copied into the project. Missing it skips
    on a developer's machine, but fails under CI=true: a CI that silently skipped every real-data test would pass
    without testing what matters."""
    if not SHARED_DATA.is_dir():
        message = f"../shared/data is not beside the project (looked in {SHARED_DATA})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must run with the shared data")
        pytest.skip(message)
    return SHARED_DATA
