"""Input files → raw records, one per JSONL line or CSV row, each with its line number and raw text.

Nothing here knows about samples: `samples_io` maps records to Samples with the column flags. The rules every
format shares live here once: only a regular file is read (a directory, a FIFO or a device is named as such, and
a FIFO is never opened in a way that could block); a UTF-8 byte-order mark is dropped; a UTF-16 or UTF-32 file
that starts with its byte-order mark is decoded as such, while one without a mark (every other byte NUL) is
refused; an undecodable UTF-8 line is an error on its record only (no guessing at Latin-1); a record nested
deeper than MAX_NESTING is an error on its line (deeper values break pydantic's JSON round trip in the run
store, at about 200 levels); a CSV quoting error costs the line it starts on, and reading resumes after it."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from overseer.errors import InputError

MAX_NESTING = 32  # containers, the record itself included; real sample files use 2 or 3
# (line, the record or why it is not one, the raw text of its lines). Every format reader yields these.
Row = tuple[int, dict[str, Any] | InputError, str]
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # a line as the csv module sees one, with its ending
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # str.splitlines breaks there too
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@contextmanager
def open_input(path: Path) -> Iterator[BinaryIO]:
    """The file opened for reading, or an InputError saying what the path is when it is not a regular file."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        what = "input file not found (a broken symbolic link)" if path.is_symlink() else "input file not found"
        raise InputError(what, path=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot open the input file: {exc.strerror}", path=str(path)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{_not_a_file(mode)}: give the path of a .jsonl or .csv file", path=str(path))
    with os.fdopen(fd, "rb") as f:
        yield f


def read_input_bytes(path: Path) -> bytes:
    with open_input(path) as f:
        return f.read()


def _not_a_file(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory, not a file, and holds no Inspect logs (.eval or .json)"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file (a run reads its input again to resume: save it to a file)"
    return "is a device or socket, not a regular file"


def jsonl_lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, why it is not UTF-8 or None), streaming the file; lines split on \n only."""
    with open_input(path) as f:
        decoded = _decode_marked(f, path)
        source: BinaryIO = io.BytesIO(decoded) if decoded is not None else f
        for number, piece in enumerate(source, start=1):
            if number == 1:
                piece = piece.removeprefix(codecs.BOM_UTF8)
            piece = piece.removesuffix(b"\n")
            try:
                yield number, piece.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                yield number, piece.decode("utf-8", "backslashreplace"), _undecodable(piece, exc)


def csv_lines(path: Path) -> tuple[list[str], dict[int, str]]:
    """(every physical line with its ending, {index: why that line is not UTF-8}). Lines split on \r, \n and
    \r\n, as the csv module counts them; each line is decoded alone so one bad byte costs one record."""
    with open_input(path) as f:
        decoded = _decode_marked(f, path)
        data = (decoded if decoded is not None else f.read()).removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:  # str.splitlines is the fast way, when no other character it treats as a line break is present
        return text.splitlines(keepends=True) if not _OTHER_BREAKS.search(text) else _LINE.findall(text), {}
    texts, bad = [], {}
    for index, piece in enumerate(data.splitlines(keepends=True)):  # bytes split on exactly those three
        try:
            texts.append(piece.decode("utf-8"))
        except UnicodeDecodeError as exc:
            texts.append(piece.decode("utf-8", "backslashreplace"))
            bad[index] = _undecodable(piece, exc)
    return texts, bad


def _undecodable(piece: bytes, exc: UnicodeDecodeError) -> str:
    return (f"not UTF-8: byte 0x{piece[exc.start]:02x} at column {exc.start + 1} (save the file as UTF-8, e.g. "
            "iconv -f latin1 -t utf-8)")


def _decode_marked(f: BinaryIO, path: Path) -> bytes | None:
    """The file re-encoded as UTF-8 when it is UTF-16 or UTF-32 with a byte-order mark; None for the UTF-8 path
    (f is then back at its start)."""
    head = f.read(4096)
    f.seek(0)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            data = f.read()
            f.seek(0)
            try:
                text = data.decode(encoding)  # the codec reads the mark for the byte order and drops it
            except UnicodeDecodeError:
                return None  # a UTF-8 file whose first line starts with those bytes: that line is reported
            # Real JSONL and CSV have ASCII punctuation; binary that happens to start with the mark does not.
            return text.encode("utf-8") if not text or any("\x00" < c < "\x80" for c in text[:4096]) else None
    if len(head) >= 16:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if min(even, odd) == 0 and max(even, odd) >= 0.75 * (len(head) // 2):
            raise InputError("looks like UTF-16 without a byte-order mark (every other byte is NUL): save it as "
                             "UTF-8", path=str(path), line=1)
    return None


def nesting_error(value: Any, *, path: Path, line: int) -> InputError | None:
    """An error when value nests containers deeper than MAX_NESTING (shared containers, as YAML aliases make
    them, are measured once; a container that contains itself is too deep)."""
    if nesting_depth(value) > MAX_NESTING:
        return InputError(f"nested deeper than {MAX_NESTING} levels: flatten the record", path=str(path),
                          line=line)
    return None


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """Depth of nested dicts and lists (a scalar is 0), at most limit + 1: the walk stops there, so its
    recursion is bounded and a value that contains itself counts as too deep. Shared values (YAML aliases)
    are measured once."""
    if not isinstance(value, dict | list):
        return 0
    measured: dict[int, int] = {}

    def depth(node: dict[Any, Any] | list[Any], room: int) -> int:
        known = measured.get(id(node))
        if known is None:
            if room == 0:
                raise _TooDeep
            below = [depth(c, room - 1) for c in (node.values() if isinstance(node, dict) else node)
                     if isinstance(c, dict | list)]
            known = measured[id(node)] = 1 + max(below, default=0)
        if known > room:
            raise _TooDeep
        return known

    try:
        return depth(value, limit)
    except _TooDeep:
        return limit + 1


class _TooDeep(Exception):
    """Unwinds the depth walk at the bound."""


def loads_bounded(text: str) -> Any:
    """json.loads whose nesting is bounded; raises ValueError with a message fit for the user."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels") from None
    if nesting_depth(value) > MAX_NESTING:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    return value


def iter_jsonl(path: Path) -> Iterator[Row]:
    for number, raw, undecodable in jsonl_lines(path):
        if undecodable:
            yield number, InputError(undecodable, path=str(path), line=number), raw
            continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, InputError(f"invalid JSON: {exc.msg} at column {exc.colno}", path=str(path),
                                     line=number), raw
            continue
        except (ValueError, RecursionError) as exc:  # integers past 4300 digits; nesting the parser cannot take
            why = f"nested deeper than {MAX_NESTING} levels" if isinstance(exc, RecursionError) else str(exc)[:100]
            yield number, InputError(f"invalid JSON: {why}", path=str(path), line=number), raw
            continue
        if not isinstance(record, dict):
            yield number, InputError("each line must be a JSON object", path=str(path), line=number), raw
            continue
        # Fewer brackets than the bound cannot nest past it: the walk is only needed for the rare other lines.
        too_deep = (nesting_error(record, path=path, line=number)
                    if raw.count("{") + raw.count("[") > MAX_NESTING else None)
        yield number, too_deep or record, raw


def iter_csv(path: Path, header_out: list[str] | None = None) -> Iterator[Row]:
    """Rows as {column: cell}, each at the line it starts on. A quoting error costs its first line only: reading
    restarts on the next line, so a stray quote never swallows the records after it. header_out, when given,
    receives the header's columns as soon as it is read (a short row lacks some, the file does not)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # responses can be long
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    texts, undecodable = csv_lines(path)
    header: list[str] | None = None
    for first, last, cells in _csv_records(texts, delimiter):
        raw = "".join(texts[first:last]).rstrip("\r\n")
        number = first + 1
        bad = next((i for i in range(first, last) if i in undecodable), None) if undecodable else None
        if header is None:
            if isinstance(cells, csv.Error) or bad is not None:
                problem = undecodable[bad] if bad is not None else f"malformed CSV: {cells}"
                raise InputError(f"cannot read the header: {problem}", path=str(path), line=number)
            header = _header(cells, path, number)
            if header_out is not None:
                header_out.extend(header)
        elif bad is not None:
            where = f" on line {bad + 1}" if bad != first else ""
            yield number, InputError(f"{undecodable[bad]}{where}", path=str(path), line=number), raw
        elif isinstance(cells, csv.Error):
            yield number, InputError(f"malformed CSV: {_explain(cells)}", path=str(path), line=number), raw
        elif len(cells) > len(header):
            yield number, InputError(f"{len(cells) - len(header)} more cells than the header has columns",
                                     path=str(path), line=number), raw
        else:
            yield number, dict(zip(header, cells, strict=False)), raw


def _csv_records(texts: list[str], delimiter: str) -> Iterator[tuple[int, int, list[str] | csv.Error]]:
    """(index of the first line, index after the last, cells or the parse error), blank lines skipped. The first
    record is the header; a later one whose quoted cell spans lines and leaves it ragged is an error too (almost
    always an unclosed quote), and reading goes on from the line after the one the error started on."""
    width: int | None = None
    start = 0
    while start < len(texts):
        base, rest = start, iter(texts)
        rest.__setstate__(base)  # type: ignore[attr-defined]  # a list iterator can start mid-list, in O(1)
        # strict: an unclosed or misplaced quote is an error, not one giant cell holding the rest of the file
        reader = csv.reader(rest, delimiter=delimiter, strict=True)
        start = len(texts)  # unless an error below asks to resynchronise
        while True:
            first = base + reader.line_num
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield first, first + 1, exc
                start = first + 1
                break
            last = base + reader.line_num
            if not cells:
                continue
            if width is None:
                width = len(cells)
            elif last - first > 1 and len(cells) != width:
                yield first, first + 1, csv.Error(
                    f"a quoted cell runs from line {first + 1} to line {last} and leaves the row with "
                    f"{len(cells)} cells, the header {width}: a stray quote?")
                start = first + 1
                break
            yield first, last, cells


def _explain(error: csv.Error) -> str:
    text = str(error)
    if text == "unexpected end of data":
        return "a quote opened on this line is never closed (unexpected end of data)"
    if text.endswith("expected after '\"'"):
        return f"a quoted cell ends mid-cell ({text}): inside a quoted cell, write a quote twice"
    return text


def _header(cells: list[str], path: Path, line: int) -> list[str]:
    seen: dict[str, int] = {}
    for column, name in enumerate(cells, start=1):
        if name in seen:
            raise InputError(f"the header names column {name!r} twice (columns {seen[name]} and {column}): "
                             "rename one, or a cell would silently be lost", path=str(path), line=line)
        seen[name] = column
    return cells
