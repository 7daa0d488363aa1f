"""Switching a new store to WAL is retried when SQLite refuses it at once with SQLITE_BUSY (two openers breaking
a lock deadlock skip the busy handler), instead of failing the command that happened to lose."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from overseer.errors import StoreError
from overseer.store import db as db_module
from overseer.store.schema import MIGRATIONS


def _busy() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database is locked")
    exc.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    return exc


class _RefusesWal:
    """A connection whose first `refusals` WAL switches fail the way a broken deadlock does."""

    def __init__(self, conn: sqlite3.Connection, refusals: int) -> None:
        self.conn, self.refusals, self.tries = conn, refusals, 0

    def execute(self, sql: str, *args: Any) -> Any:
        if "journal_mode" in sql:
            self.tries += 1
            if self.tries <= self.refusals:
                raise _busy()
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _patch(monkeypatch: pytest.MonkeyPatch, refusals: int) -> list[_RefusesWal]:
    made: list[_RefusesWal] = []
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> _RefusesWal:
        made.append(_RefusesWal(real(*args, **kwargs), refusals))
        return made[-1]

    monkeypatch.setattr(db_module.sqlite3, "connect", connect)
    return made


def test_a_refused_wal_switch_is_retried_and_the_store_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    made = _patch(monkeypatch, refusals=3)
    store = db_module.Database(tmp_path / "runs.sqlite", MIGRATIONS)
    assert made[0].tries == 4
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.schema_version() == len(MIGRATIONS)
    store.close()


def test_a_switch_refused_past_the_busy_timeout_is_a_one_line_store_error(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.05)
    _patch(monkeypatch, refusals=10**6)
    with pytest.raises(StoreError, match="stayed locked"):
        db_module.Database(tmp_path / "runs.sqlite", MIGRATIONS)
