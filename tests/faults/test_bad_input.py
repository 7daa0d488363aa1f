"""ARCH 13: duplicate ids or malformed lines in the input are rejected with line numbers, and with
--skip-invalid the outputs plus the errors account for every input record.

tests/cli/test_judge_cli.py covers JSONL: a malformed line names file:line and judges nothing; duplicate ids name
both lines; --skip-invalid accounts for 13 of 13 lines. Here: the CSV reader (multi-line quoted cells, too many
cells, bad labels, duplicates), a JSONL file with every kind of bad line at once, and a hypothesis property that
outputs + errors = inputs for arbitrary mixtures of good and bad lines through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fault_helpers import cli, read_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
