"""Missing shared data skips a developer's run but fails CI (a CI that skipped every real-data test would pass)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shared_data


def test_missing_shared_data_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shared_data, "SHARED_DATA", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run with the shared data"):
        shared_data.require_shared_data()


def test_missing_shared_data_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shared_data, "SHARED_DATA", tmp_path / "absent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        shared_data.require_shared_data()
