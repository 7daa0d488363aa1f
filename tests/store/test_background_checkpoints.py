"""While judging, the WAL is copied into the database by a thread (Database.background_checkpoints), not inside
the commit that happens to cross SQLite's 1000-page mark: that checkpoint, with its fsync, was more than half of
a cached verdict's write. The automatic checkpoint comes back afterwards, also when the job fails."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from overseer.store.db import Database


def test_the_thread_copies_the_wal_while_commits_do_not(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    db = Database(path, ["CREATE TABLE t (x TEXT);"])
    before = path.stat().st_size
    with db.background_checkpoints(every_s=0.05):
        assert db.scalar("PRAGMA wal_autocheckpoint") == 0
        for _ in range(20):  # 20 commits, ~1,500 pages: past the automatic checkpoint's mark
            with db.transaction():
                db.executemany("INSERT INTO t VALUES (?)", [("x" * 3000,)] * 100)
        deadline = time.monotonic() + 10
        while path.stat().st_size < before + 5_000_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size >= before + 5_000_000  # the rows reached the database file itself
    assert db.scalar("PRAGMA wal_autocheckpoint") == 1000
    assert db.scalar("SELECT COUNT(*) FROM t") == 2000


def test_without_the_thread_nothing_would_copy_it(tmp_path: Path) -> None:
    """The control for the test above: with the automatic checkpoint off and no thread, the file stays small."""
    path = tmp_path / "x.sqlite"
    db = Database(path, ["CREATE TABLE t (x TEXT);"])
    before = path.stat().st_size
    db.execute("PRAGMA wal_autocheckpoint = 0")
    for _ in range(20):
        with db.transaction():
            db.executemany("INSERT INTO t VALUES (?)", [("x" * 3000,)] * 100)
    time.sleep(0.3)
    assert path.stat().st_size < before + 1_000_000


def test_the_automatic_checkpoint_comes_back_when_the_job_fails(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.sqlite", ["CREATE TABLE t (x TEXT);"])
    with pytest.raises(RuntimeError), db.background_checkpoints(every_s=0.05):
        raise RuntimeError("the judging failed")
    assert db.scalar("PRAGMA wal_autocheckpoint") == 1000
