"""ARCH 13: duplicate ids or malformed lines in the input are rejected with line numbers, and with
--skip-invalid the outputs plus the errors account for every input record.

tests/cli/test_judge_cli.py covers JSONL: a malformed line names file:line and judges nothing; duplicate ids name
both lines; --skip-invalid accounts for 13 of 13 lines. Here: the CSV reader (multi-line quoted cells, too many
cells, bad labels, duplicates), a JSONL file with every kind of bad line at once, and a hypothesis property that
outputs + errors = inputs for arbitrary mixtures of good and bad lines through the real CLI. Issue 11 items 3, 8
and 9 at the end: careless files (stray quotes, a BOM, a Latin-1 byte, UTF-16, deep nesting, a mistyped column, a
directory or a FIFO as INPUT) through the real CLI, each with --skip-invalid sending exactly the bad records to the
errors file."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest
from fault_helpers import cli, read_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overseer.store.runs import RunStore

ECHO = ("--backend", "scripted:echo")


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def csv_rows() -> list[list[str]]:
    return [
        ["id", "prompt", "response", "label"],  # line 1
        ["a", "q1", "fine answer", "aligned"],  # line 2
        ["b", "q2", "first line\nsecond line", "misaligned"],  # lines 3-4: a quoted newline
        ["a", "q3", "again", "aligned"],  # line 5: duplicate of line 2
        ["c", "q4", "answer", "aligned", "extra"],  # line 6: a cell too many
        ["d", "q5", "answer", "purple"],  # line 7: unknown label
        ["e", "q6", "answer", "safe"],  # line 8: a synonym, fine
    ]


def test_csv_problems_are_rejected_with_file_and_line(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in.csv", csv_rows())
    code, text = cli("judge", str(data), *ECHO, "--label-field", "label", "-w", str(tmp_path / "ws"))
    assert code == 2, text
    assert "3 invalid record(s)" in text
    assert f"{data}:5: duplicate id 'a' (first seen on line 2)" in text
    assert f"{data}:6: 1 more cells than the header has columns" in text
    assert f"{data}:7: unknown label 'purple'" in text
    assert not (tmp_path / "ws" / "outputs").exists()  # nothing judged


def test_csv_skip_invalid_outputs_plus_errors_equal_inputs(tmp_path: Path) -> None:
    data, out = write_csv(tmp_path / "in.csv", csv_rows()), tmp_path / "out.jsonl"
    code, text = cli("judge", str(data), *ECHO, "--label-field", "label", "--skip-invalid", "-o", str(out),
                     "-w", str(tmp_path / "ws"), "--json")
    assert code == 0, text
    judged = [r["sample_id"] for r in read_jsonl(out)]
    errors = read_jsonl(out.with_suffix(".errors.jsonl"))
    assert sorted(judged) == ["a", "b", "e"]
    assert [e["line"] for e in errors] == [5, 6, 7]
    assert len(judged) + len(errors) == len(csv_rows()) - 1  # every record but the header, once
    assert json.loads(text[text.index("{"):])["input_errors"] == 3


def test_every_kind_of_bad_jsonl_line_at_once(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "response": "ok"}).encode(),  # 1
        b"not json",  # 2
        b"[1, 2]",  # 3: not an object
        b"\xff\xfe not utf-8",  # 4
        b"",  # 5: blank lines are skipped, not errors
        json.dumps({"id": "a", "response": "dup"}).encode(),  # 6
        json.dumps({"id": "b", "response": 42}).encode(),  # 7: response not text
        json.dumps({"id": "c", "prompt": "no response"}).encode(),  # 8
        json.dumps({"id": "d", "response": "ok", "conversation": [{"role": "user"}]}).encode(),  # 9
        json.dumps({"id": "e", "response": "ok"}).encode(),  # 10
        b'{"id": "f", "response": "torn',  # 11: torn last line, no newline
    ]
    data, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    data.write_bytes(b"\n".join(lines))
    code, text = cli("judge", str(data), *ECHO, "-w", str(tmp_path / "ws"))
    assert code == 2 and "8 invalid record(s)" in text, text
    for line in (2, 3, 4, 6, 7, 8, 9, 11):
        assert f"{data}:{line}:" in text, line
    code, text = cli("judge", str(data), *ECHO, "--skip-invalid", "-o", str(out), "-w", str(tmp_path / "ws"))
    assert code == 0, text
    errors = read_jsonl(out.with_suffix(".errors.jsonl"))
    assert [e["line"] for e in errors] == [2, 3, 4, 6, 7, 8, 9, 11]
    assert sorted(r["sample_id"] for r in read_jsonl(out)) == ["a", "e"]


good = st.builds(lambda i: json.dumps({"id": f"g{i}", "response": f"answer {i}"}), st.integers(0, 5))
bad = st.sampled_from(["{", "null", '"text"', '{"id": "x"}', '{"response": 1}', '{"id": "g1", "response": []}'])
mixtures = st.lists(st.one_of(good, bad), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=mixtures)
def test_outputs_plus_errors_equal_inputs_for_any_mixture(tmp_path_factory, lines: list[str]) -> None:
    root = tmp_path_factory.mktemp("mix")
    data, out = root / "in.jsonl", root / "out.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = cli("judge", str(data), *ECHO, "--skip-invalid", "-o", str(out), "-w", str(root / "ws"))
    objects = [json.loads(line) for line in lines if line.startswith("{") and line != "{"]
    if objects and not any("response" in o for o in objects):  # no record has the column: refused whole
        assert code == 2 and "no record has the column 'response'" in text and "columns found: 'id'" in text, text
        return
    assert code == 0, text
    judged = read_jsonl(out) if out.exists() else []
    errors_file = out.with_suffix(".errors.jsonl")
    errors = read_jsonl(errors_file) if errors_file.exists() else []
    assert len(judged) + len(errors) == len(lines)
    assert len({e["line"] for e in errors}) == len(errors)  # each bad line reported once
    ids = [r["sample_id"] for r in judged]
    assert len(ids) == len(set(ids))
    assert all(1 <= e["line"] <= len(lines) and e["error"] for e in errors)


def test_a_non_utf8_byte_in_a_csv_names_its_line(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(b"id,response\n1,fine\n2,fine\n3,bad \xff byte\n4,fine\n")
    code, text = cli("judge", str(data), *ECHO, "-w", str(tmp_path / "ws"))
    assert code == 2
    assert f"{data}:4:" in text, text


def test_a_torn_csv_record_is_rejected_not_judged(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(b'id,response\n1,fine\n2,"cut off in the middle of a quoted cell\n')
    code, text = cli("judge", str(data), *ECHO, "-w", str(tmp_path / "ws"))
    assert code == 2 and f"{data}:" in text, text


# --- issue 11 items 3, 8, 9 ---------------------------------------------------------------------------------

def judge_skipping(tmp_path: Path, data: Path, *flags: str) -> tuple[list[str], list[int], str]:
    """(judged ids, error lines, CLI text) of `judge --skip-invalid`."""
    out = tmp_path / "out.jsonl"
    code, text = cli("judge", str(data), *ECHO, *flags, "--skip-invalid", "-o", str(out), "-w", str(tmp_path / "ws"))
    assert code == 0, text
    errors_file = out.with_suffix(".errors.jsonl")
    errors = read_jsonl(errors_file) if errors_file.exists() else []
    return sorted(r["sample_id"] for r in read_jsonl(out)), [e["line"] for e in errors], text


def test_careless_csv_bytes_cost_exactly_their_records(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(b"\xef\xbb\xbfid,response\n"  # a BOM before the header
                     b"1,fine\n"  # 2
                     b'2,"stray quote\n'  # 3
                     b"3,fine\n"  # 4
                     b"4,caf\xe9 in Latin-1\n"  # 5
                     b'5,"a, quoted cell"\n'  # 6
                     b'6,"misplaced" quote\n'  # 7
                     b"7,fine\n")  # 8
    code, text = cli("judge", str(data), *ECHO, "-w", str(tmp_path / "ws0"))
    assert code == 2 and "3 invalid record(s)" in text, text
    assert f"{data}:3: malformed CSV" in text and f"{data}:5: not UTF-8: byte 0xe9" in text
    assert f"{data}:7: malformed CSV" in text
    judged, error_lines, _ = judge_skipping(tmp_path, data)
    assert judged == ["1", "3", "5", "7"] and error_lines == [3, 5, 7]  # 4 + 3 = the 7 records


def test_a_utf16_csv_is_judged_like_its_utf8_twin(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes("id,response\n1,déjà vu\n2,fine\n".encode("utf-16"))
    judged, error_lines, _ = judge_skipping(tmp_path, data)
    assert (judged, error_lines) == (["1", "2"], [])


def test_a_deeply_nested_record_is_skipped_and_the_run_stays_readable(tmp_path: Path) -> None:
    deep: object = "leaf"
    for _ in range(600):
        deep = {"k": deep}
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "response": "x"},
                                                       {"id": "b", "response": "y", "meta": deep},
                                                       {"id": "c", "response": "z"}]) + "\n")
    judged, error_lines, _ = judge_skipping(tmp_path, data)
    assert (judged, error_lines) == (["a", "c"], [2])
    store = RunStore(tmp_path / "ws" / "runs.sqlite")  # every later read of the run works
    (run,) = store.list_runs()
    assert sorted(s.id for s in store.samples(run.id)) == ["a", "c"]
    assert [line for line, _, _ in store.input_errors(run.id)] == [2]
    code, text = cli("runs", "show", run.id, "-w", str(tmp_path / "ws"))
    assert code == 0 and "Traceback" not in text, text


def test_a_mistyped_prompt_field_is_refused_listing_the_columns(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"id": "a", "question": "q", "response": "r"}\n{"id": "b", "question": "q", "response": "r"}\n')
    for skip in ((), ("--skip-invalid",)):
        code, text = cli("judge", str(data), *ECHO, "--prompt-field", "questoin", *skip, "-w", str(tmp_path / "ws"))
        assert code == 2, text
        assert "no record has the column 'questoin' (--prompt-field) (did you mean 'question'?)" in text
        assert "columns found: 'id', 'question', 'response'" in text
    assert not (tmp_path / "ws" / "outputs").exists()  # nothing judged with an empty prompt


@pytest.mark.timeout(120)  # a FIFO opened the ordinary way blocks until a writer comes: fail, never hang
def test_a_directory_or_a_fifo_as_input_is_named_for_what_it_is(tmp_path: Path) -> None:
    folder, fifo = tmp_path / "folder.jsonl", tmp_path / "pipe.jsonl"
    folder.mkdir()
    os.mkfifo(fifo)
    code, text = cli("judge", str(folder), *ECHO, "-w", str(tmp_path / "ws"))
    assert code == 2 and f"{folder}: is a directory, not a file" in text, text
    started = time.monotonic()
    code, text = cli("judge", str(fifo), *ECHO, "-w", str(tmp_path / "ws"))
    assert code == 2 and f"{fifo}: is a named pipe (FIFO), not a file" in text, text
    assert time.monotonic() - started < 60  # returned, rather than waiting for a writer


def test_skip_invalid_without_o_writes_the_errors_file_beside_the_default_output(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text('id,response\n1,fine\n2,"never closed\n3,fine\n')
    code, text = cli("judge", str(data), *ECHO, "--skip-invalid", "-w", str(tmp_path / "ws"))
    assert code == 0, text
    (errors_file,) = (tmp_path / "ws" / "outputs").glob("*.errors.jsonl")
    (error,) = read_jsonl(errors_file)
    assert error["line"] == 3 and "a quote opened on this line is never closed" in error["error"]
    assert error["raw"] == '2,"never closed'
