"""Issue 11.15, the memory's part: a damaged store is repaired from the log or refused with one line that names the
file and the way back — never read as a smaller memory. Before: a deleted index read as "0 edge cases", a truncated
cases.jsonl was accepted as the truth, and a corrupt meta.json was a JSON traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from chromadb.api.client import SharedSystemClient
from memory_cli_helpers import cases, cli, cli_json, write_jsonl

from overseer.memory.store import EdgeCaseStore


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    """A workspace whose memory holds 5 cases, 3 of them reviewed."""
    ws = tmp_path / "ws"
    assert cli("seed", str(write_jsonl(tmp_path / "r.jsonl", cases(3))), "--reviewed", "-w", str(ws))[0] == 0
    assert cli("seed", str(write_jsonl(tmp_path / "u.jsonl", cases(2, prefix="u"))), "-w", str(ws))[0] == 0
    return ws


def fails_in_one_line(*args: str) -> str:
    code, text = cli(*args)
    assert code == 2 and "Traceback" not in text, text
    assert len(text.strip().splitlines()) <= 3, text  # one message (rich may wrap it), not a dump
    return " ".join(text.split())


def delete_index(ws: Path) -> None:
    shutil.rmtree(ws / "memory" / "index")
    SharedSystemClient.clear_system_cache()  # what a new process sees: chroma caches open indexes per path


def test_a_deleted_index_is_rebuilt_from_the_log(memory: Path, caplog: pytest.LogCaptureFixture) -> None:
    delete_index(memory)
    store = EdgeCaseStore(memory / "memory")  # a reader: it takes the free writer lock to repair
    assert (store.count(), store.count(reviewed=True)) == (5, 3)
    assert "rebuilding it from" in caplog.text
    assert [c.metadata["record_id"] for c, _ in store.similar("Tell me about baking bread (part 0)", 1)] == ["c0"]
    delete_index(memory)
    stats = cli_json("memory", "stats", "--json", "-w", str(memory))
    assert (stats["count"], stats["reviewed"]) == (5, 3)


def test_a_deleted_index_is_rebuilt_by_the_next_writer(memory: Path, tmp_path: Path) -> None:
    delete_index(memory)
    code, text = cli("seed", str(write_jsonl(tmp_path / "more.jsonl", cases(1, prefix="m"))), "-w", str(memory))
    assert code == 0 and "added 1" in text
    assert cli_json("memory", "stats", "--json", "-w", str(memory))["count"] == 6


def test_a_truncated_log_is_an_error_until_the_user_accepts_it(memory: Path) -> None:
    log = memory / "memory" / "cases.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2]))  # cut at a line boundary: nothing torn to notice
    text = fails_in_one_line("memory", "stats", "-w", str(memory))
    assert f"{log} is" in text and "truncated or replaced" in text and "memory rebuild" in text
    assert "memory export" in text  # the backup to restore from
    text = fails_in_one_line("seed", str(log.parent.parent.parent / "r.jsonl"), "-w", str(memory))
    assert "truncated" in text  # a writer refuses too: appending would bury the loss
    code, text = cli("memory", "rebuild", "-w", str(memory))
    assert code == 0 and "rebuilt the index: 2 cases" in text, text
    assert cli_json("memory", "stats", "--json", "-w", str(memory))["count"] == 2


def test_a_log_replaced_by_a_longer_one_is_detected(memory: Path, tmp_path: Path) -> None:
    log = memory / "memory" / "cases.jsonl"
    other = tmp_path / "other"
    assert cli("seed", str(write_jsonl(tmp_path / "x.jsonl", cases(9, prefix="x"))), "-w", str(other))[0] == 0
    shutil.copy(other / "memory" / "cases.jsonl", log)
    text = fails_in_one_line("memory", "search", "tax", "-w", str(memory))
    assert "does not end as the memory last wrote it" in text and "memory rebuild" in text


def test_a_torn_last_line_is_still_repaired_silently(memory: Path, tmp_path: Path) -> None:
    log = memory / "memory" / "cases.jsonl"
    with log.open("ab") as f:
        f.write(b'{"op": "put", "case": {"id": "ec-torn"')  # a writer killed mid-append
    code, text = cli("seed", str(write_jsonl(tmp_path / "more.jsonl", cases(1, prefix="m"))), "-w", str(memory))
    assert code == 0 and "added 1" in text
    assert cli_json("memory", "stats", "--json", "-w", str(memory))["count"] == 6


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"indexed_bytes": "many"}', "\udcff"])
def test_a_corrupt_meta_json_is_one_line_naming_it_and_the_way_back(memory: Path, damage: str) -> None:
    meta = memory / "memory" / "meta.json"
    meta.write_bytes(damage.encode("utf-8", "surrogateescape"))
    for command in (("memory", "stats"), ("memory", "search", "tax"), ("memory", "list")):
        text = fails_in_one_line(*command, "-w", str(memory))
        assert f"{meta} is unreadable" in text and "memory rebuild" in text
    code, text = cli("memory", "rebuild", "-w", str(memory))
    assert code == 0 and "rebuilt the index: 5 cases" in text, text
    stats = cli_json("memory", "stats", "--json", "-w", str(memory))
    assert (stats["count"], stats["reviewed"], stats["embedding"]) == (5, 3, "wordllama")


def test_a_missing_meta_json_beside_a_log_is_not_an_empty_memory(memory: Path) -> None:
    (memory / "memory" / "meta.json").unlink()
    text = fails_in_one_line("memory", "stats", "-w", str(memory))
    assert "meta.json is missing" in text and "holds cases" in text and "memory rebuild" in text
    assert cli("memory", "rebuild", "-w", str(memory))[0] == 0
    assert cli_json("memory", "stats", "--json", "-w", str(memory))["count"] == 5
