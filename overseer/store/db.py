"""The database connection: opening (PRAGMAs, race-free forward-only migrations), transactions, and the
translation of SQLite's damage and lock errors into one-line `StoreError`s.

Everything SQLite-specific that the table modules need (PRAGMAs, `BEGIN IMMEDIATE`, JSON functions, string
aggregation) is a helper here, so another engine could be added in this one file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from overseer.errors import RunError, StoreError, StoreLockedError

# Generous: eight commands opening one new workspace on two shared cores queue behind one migration.
BUSY_TIMEOUT_S = 30.0
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}  # primary result codes
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


class Database:
    """One connection to one SQLite file, in autocommit mode: a statement outside `transaction()` commits alone."""

    def __init__(self, path: str | Path, migrations: Sequence[str]) -> None:
        self.path = Path(path)
        self.busy_timeout = BUSY_TIMEOUT_S
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.guard():
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                        timeout=BUSY_TIMEOUT_S)
            try:
                # The busy timeout first: every statement after it may have to wait for another opener.
                self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                self._enable_wal()
                self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across process crashes
                self._migrate(migrations)
            except BaseException:
                self.conn.close()
                raise

    def close(self) -> None:
        self.conn.close()

    def _enable_wal(self) -> None:
        """Two openers switching a new file to WAL at once both hold a shared lock and want the exclusive one;
        SQLite breaks that deadlock by failing one of them at once with SQLITE_BUSY, without its busy handler
        (seen: one of 16 threads opening a new workspace). The wait the busy timeout gives every other
        statement is given here by hand."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        pause = 0.005
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
                if code not in _BUSY or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def set_busy_timeout(self, seconds: float) -> None:
        """How long a statement waits for another connection's write lock before StoreLockedError. A writer
        that retries on its own (the review app's) waits briefly, so it can tell the user the store is locked."""
        self.busy_timeout = seconds
        self.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    # --- errors ---------------------------------------------------------------------------------------------
    @contextmanager
    def guard(self) -> Iterator[None]:
        """Damage and lock timeouts become one line that names the file and what to do; other errors pass."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
            if code in _DAMAGED:
                folder = self.path.parent / "damaged"
                raise StoreError(
                    f"{self.path} is damaged ({exc}). To go on with a fresh run store, move it aside: `mkdir "
                    f"{folder} && mv {self.path}* {folder}/`; rows it still holds can be salvaged from the moved copy "
                    f"with `sqlite3 {folder / self.path.name} .recover` (or `.dump`)") from None
            if code in _BUSY:
                raise StoreLockedError(f"{self.path} stayed locked by another process for {self.busy_timeout:g} s "
                                       f"({exc}); try again when it has finished") from None
            raise

    # --- statements -----------------------------------------------------------------------------------------
    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.guard():
            return self.conn.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.guard():
            self.conn.executemany(sql, rows)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self.guard():
            return self.conn.execute(sql, args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first row, or None."""
        with self.guard():
            return self.conn.execute(sql, args).fetchone()

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = self.one(sql, args)
        return row[0] if row else None

    def iterate(self, sql: str, args: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows one at a time (a large run's results never sit in memory together); damage found midway is
        reported like damage found at the start."""
        with self.guard():
            cursor = self.conn.execute(sql, args)
            yield from cursor

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction, taken at its start so two writers queue instead of failing mid-way."""
        self.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            with suppress(sqlite3.Error):  # keep the error that stopped the transaction, not the rollback's
                self.conn.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    @contextmanager
    def background_checkpoints(self, every_s: float = 0.5) -> Iterator[None]:
        """While a long write-heavy job runs, copy the WAL into the database from a thread instead of in the
        committing statement. SQLite's automatic checkpoint runs inside whichever commit crosses 1000 pages,
        with an fsync, and that was more than half of an autocommit's cost (a cached verdict: 45 µs → 20 µs);
        Python's sqlite3 releases the GIL while SQLite works, so here it overlaps the judging. PASSIVE: it never
        blocks a writer or a reader. The automatic checkpoint comes back afterwards, and one last copy is made."""
        stop = threading.Event()

        def checkpoint() -> None:
            with suppress(sqlite3.Error):
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=1.0)
                try:
                    while not stop.wait(every_s):
                        with suppress(sqlite3.Error):  # busy: another process is checkpointing; next time
                            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    with suppress(sqlite3.Error):
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    conn.close()

        before = int(self.scalar("PRAGMA wal_autocheckpoint"))
        self.execute("PRAGMA wal_autocheckpoint = 0")
        worker = threading.Thread(target=checkpoint, name="overseer-wal-checkpoint", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()
            with suppress(sqlite3.Error):
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {before}")

    # --- migrations -----------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self.scalar("PRAGMA user_version"))

    def _migrate(self, migrations: Sequence[str]) -> None:
        """Forward-only: step N runs once, in one transaction with `user_version = N`. The version is read again
        inside that transaction, so of several processes opening a new file at once exactly one applies each
        step and the others, waiting on the lock, find it done."""
        if self.schema_version() == len(migrations):
            return  # the common case, without taking the write lock
        while True:
            with self.transaction():
                current = self.schema_version()
                if current > len(migrations):
                    raise RunError(f"{self.path} was written by a newer overseer (schema {current}); "
                                   "upgrade overseer")
                if current == len(migrations):
                    return
                if current == 0 and self.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                    raise StoreError(
                        f"{self.path} holds tables but no schema version (rebuilt from a .recover or .dump?); if "
                        f"overseer wrote it, set the version with `sqlite3 {self.path} 'PRAGMA user_version = "
                        f"{len(migrations)}'`, or move it aside to start a fresh store")
                for statement in statements(migrations[current]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {current + 1}")


def statements(script: str) -> list[str]:
    """Split a migration script into statements (`executescript` would commit our transaction first)."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:80]!r}")
    return out


# --- SQL fragments whose spelling is SQLite's ---------------------------------------------------------------
def json_get(column: str, path: str) -> str:
    """The JSON value at `path` (e.g. `$.aggregate.confidence`) inside a TEXT column."""
    return f"json_extract({column}, '{path}')"


def json_list_has(column: str, path: str = "$") -> str:
    """True when the JSON array at `path` in `column` holds the bound parameter."""
    return f"EXISTS (SELECT 1 FROM json_each({column}, '{path}') WHERE value = ?)"


def json_nested_list_has(column: str, outer: str, inner: str) -> str:
    """True when any object in the array `outer` has, in its array `inner`, the bound parameter."""
    return (f"EXISTS (SELECT 1 FROM json_each({column}, '{outer}') o, json_each(o.value, '{inner}') i "
            "WHERE i.value = ?)")


def concat_rows(expression: str, separator_code: int) -> str:
    """Aggregate one text value per row into one string, joined by the character `separator_code`."""
    return f"group_concat({expression}, char({separator_code}))"
