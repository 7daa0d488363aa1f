"""A damaged `runs.sqlite` (truncated, garbage, a corrupt page) or `secret.key`: every command that meets it
prints one line naming the file and how to recover, exits 2, and never shows a traceback (issue 11 item 15)."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
from pathlib import Path

import pytest

from overseer.cli.main import run_app
from overseer.errors import StoreError
from overseer.store import open_store
from overseer.store.schema import MIGRATIONS
from overseer.types import Aggregate, Sample, SampleResult

PAGE = 4096
N = 300


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


@pytest.fixture
def workspace(tmp_path: Path, make_verdict) -> tuple[Path, str]:
    """A closed store with one run of N samples and results: large enough to span many pages."""
    ws = tmp_path / "ws"
    store = open_store(ws)
    samples = [(i, Sample(id=f"s{i:05d}", response=f"answer {i} " * 40)) for i in range(N)]
    run_id = store.create_run(input_path="in.jsonl", input_sha256=None, output_path=None, config={},
                              samples=samples)
    for _, s in samples:
        agg = Aggregate(sample_id=s.id, label="aligned", n_judges=1, n_scored=1)
        store.save_result(SampleResult(run_id=run_id, sample_id=s.id, aggregate=agg,
                                       verdicts=[make_verdict("aligned", sample_id=s.id)]))
    store.close()
    assert not (ws / "runs.sqlite-wal").exists()  # checkpointed on close: the file alone holds everything
    return ws, run_id


def assert_one_line_error(code: int, text: str, path: Path) -> None:
    assert code == 2, text
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert str(path) in lines[0] and "damaged" in lines[0] and "mv " in lines[0], lines[0]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def tiny(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:50])  # not even a whole header


@pytest.mark.parametrize("damage", [truncate, garbage, tiny])
@pytest.mark.parametrize("command", [("runs", "list"), ("runs", "show", "RUN"), ("runs", "export", "RUN"),
                                     ("judge", "IN", "--backend", "scripted:echo")])
def test_a_damaged_store_is_one_line_naming_the_file_and_the_way_out(workspace, tmp_path, damage, command):
    ws, run_id = workspace
    (tmp_path / "in.jsonl").write_text('{"id": "a", "response": "hi"}\n', encoding="utf-8")
    damage(ws / "runs.sqlite")
    args = [{"RUN": run_id, "IN": str(tmp_path / "in.jsonl")}.get(a, a) for a in command]
    assert_one_line_error(*cli(*args, "-w", str(ws)), ws / "runs.sqlite")


def damage_page_holding(path: Path, text: str) -> None:
    data = path.read_bytes()
    at = data.find(text.encode())
    assert at > PAGE, "the row should sit on a data page, not the schema page"
    with path.open("r+b") as f:  # the page's b-tree header: SQLite now reads this page as garbage
        f.seek(at // PAGE * PAGE)
        f.write(b"\xff" * 16)


def test_a_corrupt_results_page_is_one_line_where_it_is_read(workspace):
    ws, run_id = workspace
    damage_page_holding(ws / "runs.sqlite", f'"sample_id":"s{N // 2:05d}","aggregate"')
    code, text = cli("runs", "list", "-w", str(ws))
    assert code == 0, text  # the runs table is intact: only what reads the damaged page fails
    for command in (("runs", "show", run_id), ("runs", "export", run_id)):
        assert_one_line_error(*cli(*command, "-w", str(ws)), ws / "runs.sqlite")


def test_damage_met_midway_through_a_streamed_read_is_a_store_error(workspace):
    ws, _ = workspace
    damage_page_holding(ws / "runs.sqlite", f'"id":"s{N // 2:05d}"')
    store = open_store(ws)
    try:
        samples = store.run_samples()
        assert next(samples).id == "s00000"  # the first pages read fine; the damage is met midway
        with pytest.raises(StoreError, match="damaged"):
            list(samples)
    finally:
        store.close()


def test_the_control_raw_sqlite_raises_on_the_same_damage(workspace):
    """Control: without the store's translation, the same damage is a raw sqlite3 exception (a traceback)."""
    ws, _ = workspace
    truncate(ws / "runs.sqlite")
    with pytest.raises(sqlite3.DatabaseError), sqlite3.connect(ws / "runs.sqlite") as db:
        db.execute("SELECT COUNT(*) FROM results").fetchall()


def test_a_store_rebuilt_without_its_schema_version_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "ws" / "runs.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:  # what `.dump | sqlite3` gives: the tables, user_version 0
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
    with pytest.raises(StoreError, match=f"PRAGMA user_version = {len(MIGRATIONS)}"):
        open_store(path.parent)


def test_an_empty_zero_byte_store_is_a_new_store(tmp_path):
    (tmp_path / "runs.sqlite").write_bytes(b"")
    store = open_store(tmp_path)
    try:
        assert store.list_runs() == []
    finally:
        store.close()


@pytest.mark.parametrize("content", [b"", b"\x01\x02\x03"])
def test_an_empty_or_short_secret_key_is_an_error_never_used(tmp_path, content):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "secret.key").write_bytes(content)
    (tmp_path / "in.jsonl").write_text('{"id": "a", "response": "hi"}\n', encoding="utf-8")
    code, text = cli("judge", str(tmp_path / "in.jsonl"), "--backend", "scripted:echo", "-w", str(ws))
    assert code == 2 and "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1 and str(ws / "secret.key") in text and "delete it" in text
    assert (ws / "secret.key").read_bytes() == content  # left for the user to look at, not silently replaced
