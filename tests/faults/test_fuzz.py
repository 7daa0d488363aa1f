"""Issue 6 item 6: hypothesis fuzzing of the input readers and the spec parser. Whatever the bytes, the only
exception allowed out is an OverseerError that says where: the file, and the line whenever one is to blame.

tests/core/test_samples_io_fuzz.py already proves that every non-blank JSONL line is accounted for exactly once
(as a sample or an error); this file fuzzes at the byte level, the CSV/TSV reader and the spec parser."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from overseer.errors import InputError, OverseerError, SpecError
from overseer.samples_io import FieldMap, read_samples
from overseer.spec import load_spec, parse_spec

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FIELDS = [FieldMap(), FieldMap(label="label"), FieldMap(id="key", label="aligned,coherent", label_rule="betley")]


def check_load(path: Path, fields: FieldMap) -> None:
    """read_samples must return, or raise an InputError naming the file; every per-record error has a line."""
    try:
        result = read_samples(path, fields)
    except InputError as exc:
        assert exc.path == str(path) and str(path) in str(exc)
        return
    except OverseerError as exc:  # pragma: no cover - the assertion below explains the failure
        raise AssertionError(f"an OverseerError that is not an InputError: {exc!r}") from exc
    for line, error, _raw in result.errors:
        assert isinstance(error, InputError)
        assert error.path == str(path) and error.line == line and line >= 1
        assert str(error).startswith(f"{path}:{line}: ")
    lines = [line for line, _ in result.samples] + [line for line, _, _ in result.errors]
    assert len(lines) == len(set(lines))


csv_cells = st.text(alphabet=string.printable + "é\u2028\x00\"", max_size=12)
csv_texts = st.lists(st.lists(csv_cells, max_size=5), max_size=8).map(
    lambda rows: "\n".join(",".join(row) for row in rows))
headers = st.sampled_from(["id,prompt,response,label", "response", "id,response,aligned,coherent,key", ""])


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]),
       fields=st.sampled_from(FIELDS))
@example(data=b"[" * 100_000, suffix=".jsonl", fields=FIELDS[0])  # nesting deeper than the recursion limit
@example(data=b'{"response": "x", "id": ' + b"9" * 5000 + b"}", suffix=".jsonl", fields=FIELDS[0])
@example(data=b"id,response\n1,\xff\xfe\n", suffix=".csv", fields=FIELDS[0])  # not UTF-8, mid-file
@example(data=b'id,response\n1,"never closed\n', suffix=".csv", fields=FIELDS[0])
@example(data=b"\x00\x00\x00", suffix=".csv", fields=FIELDS[0])
def test_arbitrary_bytes_in_any_reader(tmp_path: Path, data: bytes, suffix: str, fields: FieldMap) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    check_load(path, fields)


@FUZZ
@given(header=headers, body=csv_texts, fields=st.sampled_from(FIELDS), crlf=st.booleans())
def test_csv_shaped_text(tmp_path: Path, header: str, body: str, fields: FieldMap, crlf: bool) -> None:
    text = f"{header}\n{body}\n"
    path = tmp_path / "fuzz.csv"
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    check_load(path, fields)


spec_lines = st.one_of(
    st.text(max_size=40),
    st.builds(lambda level, title, anchor: f"{'#' * level} {title} {{#{anchor}}}",
              st.integers(1, 7), st.text(alphabet=string.ascii_letters + " {}#=", max_size=15),
              st.sampled_from(["a", "b", "a b=c", "x.y", "", "a k=v k2=v2", "bad id!", "c k="])),
    st.sampled_from(["```", "~~~", "````python", "```", "# plain heading", "#### {#dup}", "#{#nospace}"]),
)


@FUZZ
@given(lines=st.lists(spec_lines, max_size=15))
@example(lines=["# A {#a}", "# B {#a}"])  # duplicate id
@example(lines=["# A {#a}", "```", "# not a heading {#b}"])  # unclosed fence
def test_spec_parser_returns_a_spec_or_a_spec_error_with_its_location(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        spec = parse_spec(text, source="fuzz.md")
    except SpecError as exc:
        assert exc.path == "fuzz.md" and str(exc).startswith("fuzz.md")
        if "already used" in str(exc):
            assert exc.line is not None and 1 <= exc.line <= len(text.splitlines())
        return
    ids = [c.id for c in spec.clauses]
    assert ids and len(ids) == len(set(ids))
    assert all(1 <= c.line <= len(text.splitlines()) for c in spec.clauses)


@FUZZ
@given(data=st.binary(max_size=300))
@example(data=b"# A {#a}\n\xff")
def test_spec_file_of_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.md"
    path.write_bytes(data)
    try:
        load_spec(path)
    except SpecError as exc:
        assert exc.path == str(path)
