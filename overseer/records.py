"""Input files → raw records, one per line or CSV row, each with its physical line number and raw text.

Nothing here knows about samples: `samples_io` maps records to Samples with the column flags. The rules every
format shares live here once: only a regular file is read (a directory, a FIFO or a device is named as such, and
a FIFO is never opened in a way that could block); a UTF-8 byte-order mark is dropped; a UTF-16 or UTF-32 file
that starts with its byte-order mark is decoded as such, while one without a mark (every other byte NUL) is
refused; an undecodable UTF-8 line is an error on that line only; a record nested deeper than MAX_NESTING is an
error on its line (deeper values break pydantic's JSON round trip in the run store, at about 200 levels)."""

from __future__ import annotations

import codecs
import csv
import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overseer.errors import InputError

MAX_NESTING = 32  # containers, the record itself included; real sample files use 2 or 3
# (line, the record or why it is not one, the raw text of its lines). Every format reader yields these.
Row = tuple[int, dict[str, Any] | InputError, str]
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass
class Line:
    number: int  # 1-based physical line
    text: str  # with its line ending when the reader needs it (CSV)
    undecodable: str | None = None  # why this line is not UTF-8; text then holds it backslash-escaped


def read_input_bytes(path: Path) -> bytes:
    """The whole file, or an InputError saying what the path is when it is not a readable regular file."""
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
        return f.read()


def _not_a_file(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file (a run reads its input again to resume: save it to a file)"
    return "is a device or socket, not a regular file"


def read_lines(path: Path, *, keep_ends: bool) -> list[Line]:
    """Physical lines, decoded one by one so one bad byte costs one record. keep_ends: split on \\r, \\n and
    \\r\\n keeping them, as the csv module counts lines; otherwise split on \\n only, as JSONL does."""
    data = _to_utf8(read_input_bytes(path), path)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    pieces = data.splitlines(keepends=True) if keep_ends else data.split(b"\n")
    if not keep_ends and pieces and pieces[-1] == b"":
        pieces.pop()
    lines = []
    for number, piece in enumerate(pieces, start=1):
        try:
            lines.append(Line(number, piece.decode("utf-8")))
        except UnicodeDecodeError as exc:
            why = (f"not UTF-8: byte 0x{piece[exc.start]:02x} at column {exc.start + 1} (save the file as UTF-8, "
                   "e.g. iconv -f latin1 -t utf-8)")
            lines.append(Line(number, piece.decode("utf-8", "backslashreplace"), why))
    return lines


def _to_utf8(data: bytes, path: Path) -> bytes:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)  # the codec reads the mark for the byte order and drops it
            except UnicodeDecodeError:
                break  # a UTF-8 file whose first line starts with those bytes: its line is reported below
            if not text or any("\x00" < c < "\x80" for c in text[:4096]):  # real JSONL/CSV has ASCII punctuation
                return text.encode("utf-8")
            break
    sample = data[:4096]
    if len(sample) >= 16:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if min(even, odd) == 0 and max(even, odd) >= 0.75 * (len(sample) // 2):
            raise InputError("looks like UTF-16 without a byte-order mark (every other byte is NUL): save it as "
                             "UTF-8", path=str(path), line=1)
    return data


def nesting_error(value: Any, *, path: Path, line: int) -> InputError | None:
    """An error when value nests containers deeper than MAX_NESTING (shared containers, as YAML aliases make
    them, are measured once; a container that contains itself is too deep)."""
    if nesting_depth(value) > MAX_NESTING:
        return InputError(f"nested deeper than {MAX_NESTING} levels: flatten the record", path=str(path),
                          line=line)
    return None


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """Depth of nested dicts and lists (a scalar is 0), computed without recursion; stops at limit + 1."""
    if not isinstance(value, dict | list):
        return 0
    depth: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    open_: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = [c for c in (node.values() if isinstance(node, dict) else node) if isinstance(c, dict | list)]
        if done:
            open_.discard(key)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > limit:
                return limit + 1
            continue
        if key in depth:
            continue
        if key in open_ or len(open_) >= limit:  # a cycle, or already past the limit on this path
            return limit + 1
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in depth)
    return depth[id(value)]


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
    for line in read_lines(path, keep_ends=False):
        number, raw = line.number, line.text
        if line.undecodable:
            yield number, InputError(line.undecodable, path=str(path), line=number), raw
            continue
        if not raw.strip():
            continue
        try:
            record = loads_bounded(raw)
        except json.JSONDecodeError as exc:
            yield number, InputError(f"invalid JSON: {exc.msg} at column {exc.colno}", path=str(path),
                                     line=number), raw
            continue
        except ValueError as exc:  # too deep; integers past 4300 digits
            yield number, InputError(f"invalid JSON: {str(exc)[:100]}", path=str(path), line=number), raw
            continue
        if not isinstance(record, dict):
            yield number, InputError("each line must be a JSON object", path=str(path), line=number), raw
            continue
        yield number, record, raw


def iter_csv(path: Path) -> Iterator[Row]:
    """Rows as {column: cell}, each at the line it starts on. A quoting error costs its first line only: reading
    restarts on the next line, so a stray quote never swallows the records after it."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # responses can be long
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    lines = read_lines(path, keep_ends=True)
    header: list[str] | None = None
    for first, last, cells in _csv_records(lines, delimiter):
        raw = "".join(line.text for line in lines[first:last]).rstrip("\r\n")
        number = lines[first].number
        bad = next((line for line in lines[first:last] if line.undecodable), None)
        if header is None:
            if isinstance(cells, csv.Error) or bad:
                problem = bad.undecodable if bad else f"malformed CSV: {cells}"
                raise InputError(f"cannot read the header: {problem}", path=str(path), line=number)
            header = _header(cells, path, number)
        elif bad:
            where = f" on line {bad.number}" if bad.number != number else ""
            yield number, InputError(f"{bad.undecodable}{where}", path=str(path), line=number), raw
        elif isinstance(cells, csv.Error):
            yield number, InputError(f"malformed CSV: {cells}", path=str(path), line=number), raw
        elif len(cells) > len(header):
            yield number, InputError(f"{len(cells) - len(header)} more cells than the header has columns",
                                     path=str(path), line=number), raw
        else:
            yield number, dict(zip(header, cells, strict=False)), raw


def _csv_records(lines: list[Line], delimiter: str) -> Iterator[tuple[int, int, list[str] | csv.Error]]:
    """(index of the first line, index after the last, cells or the parse error), blank lines skipped. The first
    record is the header; a later one whose quoted cell spans lines and leaves it ragged is an error too (almost
    always an unclosed quote), and reading goes on from the line after the one the error started on."""
    texts = [line.text for line in lines]
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


def _header(cells: list[str], path: Path, line: int) -> list[str]:
    seen: dict[str, int] = {}
    for column, name in enumerate(cells, start=1):
        if name in seen:
            raise InputError(f"the header names column {name!r} twice (columns {seen[name]} and {column}): "
                             "rename one, or a cell would silently be lost", path=str(path), line=line)
        seen[name] = column
    return cells
