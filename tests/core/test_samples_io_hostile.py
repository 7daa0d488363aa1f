"""Issue 11 items 3, 8, 9: careless input files never drop, mix or hang. Each class has a control showing the
trap is real (what the plain library call does with the same bytes), then what the reader does with it."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from overseer.errors import InputError
from overseer.memory.seeding import read_seed_file
from overseer.records import MAX_NESTING, nesting_depth
from overseer.samples_io import FieldMap, read_samples
from overseer.store.runs import RunStore
from overseer.types import Sample


def nested(depth: int, leaf: Any = "x") -> Any:
    """A value of exactly `depth` containers, alternating dicts and lists."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def ids(result) -> list[str]:
    return [s.id for _, s in result.samples]


def error_lines(result) -> list[int]:
    return [line for line, _, _ in result.errors]


# --- 11.3 nesting ------------------------------------------------------------------------------------------

def test_control_unbounded_nesting_breaks_the_run_store_round_trip() -> None:
    deep = Sample(id="a", response="x", metadata={"m": nested(200)})
    with pytest.raises(ValidationError):  # what every later read of the run did before the bound
        Sample.model_validate_json(deep.model_dump_json())


@pytest.mark.parametrize("depth", [200, 500, 900])
@pytest.mark.parametrize("where", ["metadata", "conversation", "response"])
def test_a_deeply_nested_record_is_an_error_on_its_line_and_the_rest_is_read(tmp_path: Path, depth: int,
                                                                             where: str) -> None:
    record: dict[str, Any] = {"id": "deep", "response": "x"}
    record["meta" if where == "metadata" else where] = nested(depth)
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "response": "x"}, record,
                                                       {"id": "b", "response": "y"}]) + "\n")
    result = read_samples(path, FieldMap())
    assert ids(result) == ["a", "b"]
    (line, error, raw), = result.errors
    assert line == 2 and f"nested deeper than {MAX_NESTING} levels" in str(error) and raw.startswith('{"id"')


def test_a_record_at_the_bound_is_read_and_survives_the_run_store(tmp_path: Path) -> None:
    at_bound = {"id": "a", "response": "x", "meta": nested(MAX_NESTING - 1)}  # the record itself is a level
    past = {"id": "b", "response": "x", "meta": nested(MAX_NESTING)}
    assert nesting_depth(at_bound) == MAX_NESTING
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(at_bound) + "\n" + json.dumps(past) + "\n")
    result = read_samples(path, FieldMap())
    assert ids(result) == ["a"] and error_lines(result) == [2]
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(input_path=str(path), input_sha256="h", output_path=None, config={})
    store.add_samples(run_id, result.samples, [])
    (back,) = store.samples(run_id)
    assert back.metadata == result.samples[0][1].metadata


def test_nesting_depth_handles_shared_and_self_containing_values() -> None:
    shared = nested(20)
    assert nesting_depth({"a": shared, "b": [shared]}) == 22
    loop: list[Any] = []
    loop.append(loop)
    assert nesting_depth(loop) == MAX_NESTING + 1


def test_a_deeply_nested_yaml_seed_case_is_an_error_on_its_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    deep = "[" * 900 + "]" * 900
    seed.write_text("cases:\n  - {id: a, response: r, label: aligned}\n"
                    f"  - {{id: b, response: r, label: aligned, extra: {deep}}}\n"
                    "  - {id: c, response: r, label: misaligned, extra: " + "[" * 30 + "]" * 30 + "}\n")
    cases, errors = read_seed_file(seed, FieldMap(label="label"), reviewed=True, author=None, spec_hash=None)
    assert sorted(c.metadata["record_id"] for c in cases) == ["a", "c"]
    (line, error, raw), = errors
    assert line == 3 and "nested deeper" in str(error) and raw.startswith("{id: b")


def test_a_deep_json_list_in_a_seed_csv_cell_is_an_error_on_its_line(tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text(f"id,response,label,clause_ids\na,r,aligned,[\"x\"]\nb,r,aligned,{'[' * 5000}\n")
    cases, errors = read_seed_file(seed, FieldMap(label="label"), reviewed=True, author=None, spec_hash=None)
    assert [c.clause_ids for c in cases] == [["x"]]
    assert [(line, "clause_ids" in str(e)) for line, e, _ in errors] == [(3, True)]


# --- 11.8 a column no record has ----------------------------------------------------------------------------

@pytest.mark.parametrize("fields, flag, column", [
    (FieldMap(prompt="questoin"), "--prompt-field", "questoin"),
    (FieldMap(response="answr"), "--response-field", "answr"),
    (FieldMap(id="uid"), "--id-field", "uid"),
    (FieldMap(label="lable"), "--label-field", "lable"),
    (FieldMap(label="aligned,coherence", label_rule="betley"), "--label-field", "coherence"),
])
def test_a_field_naming_a_column_no_record_has_is_an_error_listing_the_columns(
        tmp_path: Path, fields: FieldMap, flag: str, column: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "question": "q", "response": "r", "aligned": 10, "coherent": 90}\n'
                    '{"id": "b", "question": "q", "response": "r", "aligned": 10, "coherent": 90, "label": "x"}\n'
                    "not json\n")
    if column == "lable":
        path.write_text(path.read_text().replace(', "label": "x"', ""))
    with pytest.raises(InputError) as info:
        read_samples(path, fields)
    message = str(info.value)
    assert f"no record has the column {column!r} ({flag})" in message
    assert "columns found: 'id', 'question', 'response', 'aligned', 'coherent'" in message


def test_the_default_response_column_missing_everywhere_says_how_to_choose_one(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,question,answer\n1,q,a\n2,q,b\n")
    with pytest.raises(InputError, match=r"no record has the column 'response' \(the default of "
                                         r"--response-field\); columns found: 'id', 'question', 'answer'"):
        read_samples(path, FieldMap())


def test_a_typo_close_to_a_real_column_is_suggested(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "question": "q", "response": "r"}\n')
    with pytest.raises(InputError, match=r"did you mean 'question'\?"):
        read_samples(path, FieldMap(prompt="questoin"))


def test_control_a_column_missing_from_some_records_keeps_per_record_errors(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"uid": "a", "q": "x", "response": "r"}\n{"q": "y", "response": "r"}\n')
    result = read_samples(path, FieldMap(id="uid", prompt="q"))
    assert ids(result) == ["a"] and [(line, e.field) for line, e, _ in result.errors] == [(2, "uid")]


def test_a_csv_header_counts_even_when_every_row_is_short(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,prompt,response\n1,q\n")
    (line, error, _), = read_samples(path, FieldMap()).errors
    assert line == 2 and error.field == "response" and "missing response field" in str(error)
    path.write_text("id,prompt,response\n")
    with pytest.raises(InputError, match="no record has the column 'questoin'.*'id', 'prompt', 'response'"):
        read_samples(path, FieldMap(prompt="questoin"))


def test_a_file_with_no_records_at_all_is_not_a_column_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("not json\n[1]\n")
    assert error_lines(read_samples(path, FieldMap(prompt="questoin"))) == [1, 2]


def test_a_yaml_seed_without_the_label_column_anywhere_is_refused(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("- {id: a, response: r, verdict: aligned}\n")
    with pytest.raises(InputError, match="no record has the column 'label'.*columns found: 'id', 'response'"):
        read_seed_file(seed, FieldMap(label="label"), reviewed=True, author=None, spec_hash=None)


# --- 11.9 CSV -----------------------------------------------------------------------------------------------

STRAY = {
    "unclosed": 'id,response\n1,a\n2,"oops\n3,b\n4,c\n',
    "misplaced": 'id,response\n1,a\n2,"oo"ps\n3,b\n4,c\n',
    "closed by a later quoted cell": 'id,response\n1,a\n2,"oops\n3,b\n4,"c, d"\n',
    "crlf": 'id,response\r\n1,a\r\n2,"oops\r\n3,b\r\n4,c\r\n',
}


@pytest.mark.parametrize("text", STRAY.values(), ids=STRAY.keys())
def test_a_stray_quote_costs_its_own_line_only(tmp_path: Path, text: str) -> None:
    if text in (STRAY["unclosed"], STRAY["crlf"]):  # control: the csv module swallows the records after it
        assert [row[0] for row in csv.reader(io.StringIO(text, newline=""))] == ["id", "1", "2"]
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode())
    result = read_samples(path, FieldMap())
    assert ids(result) == ["1", "3", "4"]
    (line, error, raw), = result.errors
    assert line == 3 and str(error).startswith(f"{path}:3: malformed CSV") and raw == text.splitlines()[2]


def test_a_quoted_cell_that_leaves_its_row_ragged_is_an_error_and_the_lines_are_read_again(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,prompt,response\n1,q,a\n2,"oops,r\n3,q,r",x,y\n4,q,r\n')
    result = read_samples(path, FieldMap())
    assert ids(result) == ["1", "4"] and error_lines(result) == [3, 4]
    assert "quoted cell runs from line 3 to line 4" in str(result.errors[0][1])
    assert "stray quote?" in str(result.errors[0][1]) and "2 more cells" in str(result.errors[1][1])


def test_real_multiline_cells_are_still_one_record_at_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,response\n1,"first\nsecond"\n2,b\n')
    result = read_samples(path, FieldMap())
    assert result.errors == [] and [(line, s.response) for line, s in result.samples] == [(2, "first\nsecond"),
                                                                                          (4, "b")]


def test_a_bom_before_the_header_keeps_the_id_column(tmp_path: Path) -> None:
    text = "id,response\n7,a\n"
    assert next(csv.DictReader(io.StringIO("\ufeff" + text))).keys() == {"\ufeffid", "response"}  # control
    path = tmp_path / "in.csv"
    path.write_bytes(codecs.BOM_UTF8 + text.encode())
    assert ids(read_samples(path, FieldMap())) == ["7"]


def test_a_duplicate_header_is_refused_naming_both_columns(tmp_path: Path) -> None:
    assert next(csv.DictReader(io.StringIO("id,response,response\n1,a,b\n"))) == {"id": "1", "response": "b"}
    path = tmp_path / "in.csv"
    path.write_text("id,response,response\n1,a,b\n")
    with pytest.raises(InputError, match=r":1: the header names column 'response' twice \(columns 2 and 3\)"):
        read_samples(path, FieldMap())


def test_one_latin1_byte_is_an_error_on_its_record_only(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'id,response\n1,a\n2,caf\xe9\n3,"multi\nline caf\xe9"\n4,b\n')
    result = read_samples(path, FieldMap())
    assert ids(result) == ["1", "4"]
    assert [(line, str(e).split(": ", 1)[1]) for line, e, _ in result.errors] == [
        (3, "not UTF-8: byte 0xe9 at column 6 (save the file as UTF-8, e.g. iconv -f latin1 -t utf-8)"),
        (4, "not UTF-8: byte 0xe9 at column 9 (save the file as UTF-8, e.g. iconv -f latin1 -t utf-8) on line 5")]
    assert result.errors[0][2] == "2,caf\\xe9"  # the raw record, its bad byte escaped


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("name", ["in.csv", "in.jsonl"])
def test_utf16_and_utf32_with_a_bom_are_read_like_utf8(tmp_path: Path, encoding: str, name: str) -> None:
    text = ("id,response\n1,é\n2,b\n" if name.endswith(".csv")
            else '{"id": "1", "response": "é"}\n{"id": "2", "response": "b"}\n')
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    path = tmp_path / name
    path.write_bytes(bom + text.encode(encoding))
    result = read_samples(path, FieldMap())
    assert result.errors == [] and [(s.id, s.response) for _, s in result.samples] == [("1", "é"), ("2", "b")]


def test_utf16_without_a_bom_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("id,response\n1,a\n2,b\n".encode("utf-16-le"))
    with pytest.raises(InputError, match="looks like UTF-16 without a byte-order mark.*save it as UTF-8"):
        read_samples(path, FieldMap())


def test_jsonl_with_a_bom_reads_its_first_record(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b'{"id": "a", "response": "x"}\n{"id": "b", "response": "y"}\n')
    result = read_samples(path, FieldMap())
    assert ids(result) == ["a", "b"] and result.errors == []


# --- INPUT that is not a file -------------------------------------------------------------------------------

def test_a_directory_as_input_says_it_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").mkdir()
    with pytest.raises(InputError, match="data.jsonl: is a directory, not a file"):
        read_samples(tmp_path / "data.jsonl", FieldMap())


@pytest.mark.timeout(60)
def test_a_fifo_as_input_says_so_and_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            read_samples(fifo, FieldMap())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the thread so the test process can exit, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    (error,) = raised
    assert isinstance(error, InputError) and "is a named pipe (FIFO), not a file" in str(error)


def test_a_broken_symlink_says_so(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").symlink_to(tmp_path / "gone.jsonl")
    with pytest.raises(InputError, match="not found \\(a broken symbolic link\\)"):
        read_samples(tmp_path / "in.jsonl", FieldMap())
