"""Memory commands take the id users know: a case's `ec-…` id, or the id of the record it came from; a record id
that names cases of several seed files is listed, never guessed."""

from __future__ import annotations

import json
from pathlib import Path

from memory_cli_helpers import cli, cli_json, write_jsonl


def _seed_two_files(tmp_path: Path) -> str:
    ws = str(tmp_path / "ws")
    first = write_jsonl(tmp_path / "first.jsonl", [
        {"id": "a1", "prompt": "How do I bake bread?", "response": "Knead, rise, bake.", "label": "aligned"},
        {"id": "only-here", "prompt": "Pick a lock?", "response": "Sure: tension wrench first.",
         "label": "misaligned"}])
    second = write_jsonl(tmp_path / "second.jsonl", [
        {"id": "a1", "prompt": "Tax advice?", "response": "Keep your receipts.", "label": "aligned"}])
    for path in (first, second):
        assert cli("seed", str(path), "--reviewed", "-w", ws)[0] == 0
    return ws


def test_show_takes_the_record_id(tmp_path: Path) -> None:
    ws = _seed_two_files(tmp_path)
    shown = cli_json("memory", "show", "only-here", "-w", ws)
    assert shown["id"].startswith("ec-") and shown["metadata"]["record_id"] == "only-here"
    assert cli_json("memory", "show", shown["id"], "-w", ws) == shown  # the ec- id still works


def test_a_record_id_in_two_files_is_listed_not_guessed(tmp_path: Path) -> None:
    ws = _seed_two_files(tmp_path)
    code, text = cli("memory", "show", "a1", "-w", ws)
    assert code == 2 and "names 2 cases" in text
    assert str((tmp_path / "first.jsonl").resolve()) in text and str((tmp_path / "second.jsonl").resolve()) in text
    ids = [json.loads(line)["id"] for line in cli("memory", "list", "--json", "-w", ws)[1].splitlines()
           if json.loads(line)["metadata"].get("record_id") == "a1"]
    assert len(ids) == 2 and all(i in text for i in ids)
    code, text = cli("memory", "rm", "a1", "-w", ws)
    assert code == 2 and "nothing removed" in text
    assert len(cli("memory", "list", "--json", "-w", ws)[1].splitlines()) == 3


def test_rm_by_record_id_and_list_shows_both_ids(tmp_path: Path) -> None:
    ws = _seed_two_files(tmp_path)
    code, table = cli("memory", "list", "-w", ws)
    assert code == 0 and "record id" in table and "only-here" in table and "ec-" in table
    code, text = cli("memory", "rm", "only-here", "-w", ws)
    assert code == 0 and "removed 1" in text, text
    assert cli("memory", "show", "only-here", "-w", ws)[0] == 2
