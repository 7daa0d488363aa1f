"""Read a seed file (JSONL, CSV or YAML) into EdgeCases, record by record.

JSONL and CSV go through `overseer.samples_io.read_samples`, so a seed file is mapped with exactly the same column
flags as `overseer judge`. YAML (a list of mappings, or a mapping with a `cases:` list) is parsed and bounded in
nesting here, and its records go through `load_rows` (column check, duplicate ids, `to_sample`). A bad record never
stops the others: it becomes an InputError naming the file, line and field, and the caller adds the valid ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from overseer.errors import ConfigError, InputError
from overseer.memory.store import case_id
from overseer.records import MAX_NESTING, Row, loads_bounded, nesting_error, read_input_bytes
from overseer.samples_io import FieldMap, LoadResult, load_rows, read_samples
from overseer.types import EdgeCase, Sample

YAML_SUFFIXES = (".yaml", ".yml")
# Columns an edge case may carry besides its label; anything else in the record is ignored.
OPTIONAL_COLUMNS = ("alignment", "coherence", "generalization", "clause_ids", "rationale")
SeedError = tuple[int, InputError, str]  # (line, error, raw record)


def read_seed_file(path: str | Path, fields: FieldMap, *, reviewed: bool, author: str | None,
                   spec_hash: str | None, id_scope: str | None = None) -> tuple[list[EdgeCase], list[SeedError]]:
    """(valid cases, invalid records sorted by line). Raises InputError only when the whole file is unreadable.

    Record ids name cases within `id_scope`, by default this file (its resolved path): the same id in two files
    is two cases unless both are seeded with one `id_scope`, which says their ids name the same cases."""
    if fields.label is None:
        raise ConfigError("seeding needs a label column (--label-field): an edge case without a label teaches "
                          "the judge nothing")
    path = Path(path)
    loaded = _read_yaml(path, fields) if path.suffix.lower() in YAML_SUFFIXES else read_samples(path, fields)
    # The resolved path, so re-seeding the same file from another directory is recognised as unchanged.
    source_ref = str(path.resolve())
    cases: list[EdgeCase] = []
    errors: list[SeedError] = list(loaded.errors)
    first_line: dict[str, int] = {}
    for line, sample in loaded.samples:
        try:
            case = _to_case(sample, fields, path=str(path), line=line, source_ref=source_ref, reviewed=reviewed,
                            author=author, spec_hash=spec_hash, id_scope=id_scope or source_ref)
            if case.id in first_line:
                # Same id, or (records without ids) the same normalized text: one of the two would silently win.
                what = (f"duplicate id {case.metadata['record_id']!r}" if "record_id" in case.metadata
                        else "same prompt and response (case and whitespace aside)")
                raise InputError(f"{what} as line {first_line[case.id]}", path=str(path), line=line)
            first_line[case.id] = line
            cases.append(case)
        except InputError as exc:
            errors.append((line, exc, sample.model_dump_json()))
    errors.sort(key=lambda e: e[0])
    return cases, errors


def _to_case(sample: Sample, fields: FieldMap, *, path: str, line: int, source_ref: str, reviewed: bool,
             author: str | None, spec_hash: str | None, id_scope: str) -> EdgeCase:
    def fail(message: str, field_name: str | None) -> InputError:
        return InputError(message, path=path, line=line, field=field_name)

    if sample.reference_label is None:
        raise fail("no label (an edge case needs one; choose the column with --label-field)", fields.label)
    # read_samples names id-less records `line-N`; such a record is identified by its text instead, so the
    # same case seeded from two files (or after lines move) stays one case.
    record_id = None if sample.id == f"line-{line}" else sample.id
    prompt = sample.context_text() or None
    extras = {name: _optional(name, sample.metadata[name], fail) for name in OPTIONAL_COLUMNS
              if sample.metadata.get(name) not in (None, "")}
    identity = case_id(prompt, sample.response, record_id, scope=f"seed:{id_scope}")
    try:
        return EdgeCase(id=identity, prompt=prompt, response=sample.response,
                        label=sample.reference_label, **extras, source="seed", source_ref=source_ref,
                        author=author, reviewed=reviewed, spec_hash=spec_hash,
                        metadata={"record_id": record_id} if record_id is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"invalid value: {first['msg']}", ".".join(map(str, first["loc"]))) from exc


def _optional(name: str, value: Any, fail: Any) -> Any:
    """Normalise what CSV cells and YAML scalars give; EdgeCase validation does the rest."""
    if name in ("alignment", "coherence"):
        # EdgeCase itself does not bound the scores; the judge's scale is 0-100 and a bool is not a score.
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not number.is_integer() or not 0 <= number <= 100:
            raise fail(f"{name} must be a whole number from 0 to 100, got {value!r}", name)
        return int(number)
    if name == "clause_ids" and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a JSON list inside a CSV cell
            try:
                return loads_bounded(text)
            except ValueError as exc:  # bad JSON, or nested past the bound
                raise fail(f"clause_ids is not a JSON list: {getattr(exc, 'msg', exc)}", name) from exc
        return [c for c in re.split(r"[,\s]+", text) if c]
    return value


def _read_yaml(path: Path, fields: FieldMap) -> LoadResult:
    try:
        text = read_input_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", path=str(path)) from exc
    # Compose first, then construct from the same node tree: each record keeps the line its node starts on.
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return LoadResult([], [])
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(f"invalid YAML: {exc.problem or exc.context}", path=str(path),
                         line=mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", path=str(path)) from exc
    finally:
        loader.dispose()
    nodes, records = _case_list(root, data, path)
    return load_rows(_yaml_rows(nodes, records, text, path), fields, path=path)


def _yaml_rows(nodes: list[yaml.Node], records: list[Any], text: str, path: Path) -> Iterator[Row]:
    for node, record in zip(nodes, records, strict=True):
        line = node.start_mark.line + 1
        raw = text[node.start_mark.index:node.end_mark.index][:2000]
        if isinstance(record, dict):
            yield line, nesting_error(record, path=path, line=line) or record, raw
        else:
            yield line, InputError("each case must be a mapping of column: value", path=str(path), line=line), raw


class _BoundedLoader(yaml.SafeLoader):
    """Composes collections only as deep as a valid record can reach. PyYAML's composer recurses once per level
    (a record nested a few hundred deep is a RecursionError for the whole file); here a deeper collection is
    skipped event by event and stands in as an empty list, deep enough that the record check rejects it."""

    nesting = 0
    bound = MAX_NESTING + 2  # the file's own levels above a record: a top mapping and its `cases:` list

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if not self.check_event(yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self.nesting >= self.bound:
            return self._skip_collection()
        self.nesting += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1

    def _skip_collection(self) -> yaml.Node:
        start = end = self.get_event()
        level = 1
        while level:
            end = self.get_event()
            if isinstance(end, yaml.CollectionStartEvent):
                level += 1
            elif isinstance(end, yaml.CollectionEndEvent):
                level -= 1
        return yaml.SequenceNode("tag:yaml.org,2002:seq", [], start.start_mark, end.end_mark)


def _case_list(root: yaml.Node, data: Any, path: Path) -> tuple[list[yaml.Node], list[Any]]:
    """The sequence node of the cases and its constructed items, in the same order."""
    if isinstance(root, yaml.SequenceNode) and isinstance(data, list):
        return list(root.value), data
    if isinstance(root, yaml.MappingNode) and isinstance(data, dict) and isinstance(data.get("cases"), list):
        for key, value in root.value:
            if key.value == "cases" and isinstance(value, yaml.SequenceNode):
                return list(value.value), data["cases"]
    raise InputError("a YAML seed file must be a list of cases, or a mapping with a `cases:` list", path=str(path),
                     line=root.start_mark.line + 1)
