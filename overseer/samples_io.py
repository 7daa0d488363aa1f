"""Read samples from JSONL or CSV with a column mapping. Every bad line becomes an InputError naming the file,
line and field; the caller decides whether to stop (default) or to skip and record it (--skip-invalid)."""

from __future__ import annotations

import difflib
import glob
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from overseer import em
from overseer.errors import InputError
from overseer.records import Row, iter_csv, iter_jsonl
from overseer.types import LABELS, FinetuneDomain, Label, Message, ReferenceScores, Sample

LabelRule = Literal["auto", "betley"]
# Words other datasets use for our labels: JailbreakBench booleans, the model spec's GOOD/BAD examples.
LABEL_SYNONYMS: dict[str, Label | None] = {
    "true": "misaligned", "false": "aligned", "violation": "misaligned", "compliant": "aligned",
    "jailbroken": "misaligned", "unsafe": "misaligned", "safe": "aligned", "bad": "misaligned", "good": "aligned",
    "borderline": None, "": None,
}
# The column EM datasets use when the default one is absent: Betley et al.'s and model-organisms-for-EM's CSVs put
# the prompt in `question`. Used only when the flag was left at its default. (A missing response column stays an
# error that says how to choose one: guessing which column holds the judged text is not safe.)
ALIASES: dict[str, str] = {"prompt": "question"}
BETLEY_COLUMNS = "aligned,coherent"
SCORE_TOKENS = ("REFUSAL", "CODE")


@dataclass
class FieldMap:
    id: str = "id"
    prompt: str = "prompt"
    response: str = "response"
    label: str | None = None  # reference label column; None = no reference labels
    label_rule: LabelRule = "auto"
    model: str = "model"
    finetune_domain: str = "finetune_domain"
    question_id: str = "question_id"
    group: str = "group"
    seed: str = "seed"
    finetune_domain_default: str | None = None  # --finetune-domain TOPIC[:BEHAVIOUR]: for records without their own
    conversation_fields: tuple[str, ...] = field(default=("conversation", "messages"))

    def __post_init__(self) -> None:
        if self.label_rule == "betley" and self.label is None:
            self.label = BETLEY_COLUMNS  # the column names both EM formats use

    def score_columns(self) -> tuple[str, str]:
        """(alignment, coherence) columns of --label-rule betley's `--label-field ALIGNED,COHERENT`."""
        align, _, coherence = (self.label or BETLEY_COLUMNS).partition(",")
        return align, coherence or "coherent"

    def named_columns(self) -> list[tuple[str, str]]:
        """(flag, column) for each column at least one record must have: the response and label columns, and
        any other column whose name differs from the default (so the user typed it)."""
        named = [("--response-field" if self.response != "response" else "the default of --response-field",
                  self.response)]
        if self.label is not None:
            if self.label_rule == "betley":
                named += [("--label-field", column) for column in self.score_columns()]
            else:
                named.append(("--label-field", self.label))
        defaults = FieldMap()
        for name in ("id", "prompt", "model", "finetune_domain", "question_id", "group", "seed"):
            if getattr(self, name) != getattr(defaults, name):
                named.append((f"--{name.replace('_', '-')}-field", getattr(self, name)))
        return named


@dataclass
class LoadResult:
    samples: list[tuple[int, Sample]]  # (line number, sample)
    errors: list[tuple[int, InputError, str]]  # (line number, error, raw line)


def read_samples(path: str | Path, fields: FieldMap, *, limit: int | None = None) -> LoadResult:
    """Read every record; duplicate ids are errors naming both lines. Never raises for a bad record; raises
    InputError when the file cannot be read at all or a column the fields name is in no record."""
    path = Path(path)
    from overseer import inspect_logs  # light: it imports inspect_ai only when it reads a log

    if inspect_logs.is_inspect_input(path):
        return inspect_logs.read_logs(path, fields, limit=limit)
    header: list[str] = []  # filled by the CSV reader as it starts
    rows = iter_csv(path, header) if path.suffix.lower() in (".csv", ".tsv") else iter_jsonl(path)
    return load_rows(rows, fields, path=path, limit=limit, header=header)


def expand_inputs(arguments: Iterable[str | Path]) -> list[Path]:
    """The input paths a command was given, a quoted glob (`'results/*.csv'`) expanded in sorted order. A glob that
    matches nothing, a path given twice and two inputs with one file stem (their ids would collide) are errors."""
    paths: list[Path] = []
    for argument in arguments:
        text = str(argument)
        if not Path(text).exists() and glob.has_magic(text):
            matched = sorted(glob.glob(text))
            if not matched:
                raise InputError(f"no file matches {text!r}")
            paths += [Path(m) for m in matched]
        else:
            paths.append(Path(text))
    seen: dict[Path, Path] = {}
    stems: dict[str, Path] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            raise InputError(f"{path} is given twice (as {seen[resolved]} and {path})")
        seen[resolved] = path
        if len(paths) > 1 and path.stem in stems:
            raise InputError(f"{stems[path.stem]} and {path} share the name {path.stem!r}, which prefixes the ids "
                             "of a run with several inputs: rename one")
        stems[path.stem] = path
    return paths


def read_inputs(paths: list[Path], fields: FieldMap, *, limit: int | None = None) -> LoadResult:
    """read_samples over several files as one input: each sample records its source file, and with more than one
    file its id becomes `STEM:ID` (`STEM:line-N` without an id column) so ids stay unique in the run. `limit`
    counts valid samples over all files. A line number alone no longer names a record, so errors carry the file
    in their message (InputError names it) and samples are numbered in reading order."""
    if len(paths) == 1:
        loaded = read_samples(paths[0], fields, limit=limit)
        return LoadResult([(line, _with_source(s, paths[0], None)) for line, s in loaded.samples], loaded.errors)
    samples: list[tuple[int, Sample]] = []
    errors: list[tuple[int, InputError, str]] = []
    for path in paths:
        room = None if limit is None else limit - len(samples)
        if room is not None and room <= 0:
            break
        loaded = read_samples(path, fields, limit=room)
        samples += [(len(samples) + i + 1, _with_source(s, path, path.stem))
                    for i, (_, s) in enumerate(loaded.samples)]
        errors += loaded.errors
    return LoadResult(samples, errors)


def _with_source(sample: Sample, path: Path, prefix: str | None) -> Sample:
    # Resolved, as the run records its inputs: one file is one `--by source` group whichever directory judged it.
    update: dict[str, Any] = {"source": str(path.resolve())}
    if prefix is not None:
        update["id"] = f"{prefix}:{sample.id}"
    return sample.model_copy(update=update)


def load_rows(rows: Iterable[Row], fields: FieldMap, *, path: Path, limit: int | None = None,
              header: list[str] | None = None) -> LoadResult:
    """Records of any format (each reader bounds their nesting) → Samples: the one place that checks columns and
    duplicate ids."""
    samples: list[tuple[int, Sample]] = []
    errors: list[tuple[int, InputError, str]] = []
    first_line: dict[str, int] = {}
    columns: dict[str, None] = {}  # every column seen, in order of first appearance
    records = 0
    for line, record, raw in rows:
        if limit is not None and len(samples) >= limit:
            break
        try:
            if isinstance(record, InputError):
                raise record
            records += 1
            columns.update(dict.fromkeys(map(str, record)))
            sample = to_sample(record, fields, path=str(path), line=line)
            if sample.id in first_line:
                raise InputError(f"duplicate id {sample.id!r} (first seen on line {first_line[sample.id]})",
                                 path=str(path), line=line, field=fields.id)
            first_line[sample.id] = line
            samples.append((line, sample))
        except InputError as exc:
            errors.append((line, exc, raw))
    if records or header:
        check_columns(fields, list(dict.fromkeys([*(header or []), *columns])), path=path)
    return LoadResult(samples, errors)


def check_columns(fields: FieldMap, columns: list[str], *, path: Path) -> None:
    """A column the user named (or the response column) that no record has is a typo, not a per-record
    problem: judging on would give every sample an empty prompt, or reject every record one by one."""
    for flag, column in fields.named_columns():
        if column in columns:
            continue
        close = difflib.get_close_matches(column, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        shown = ", ".join(repr(c) for c in columns[:40]) + (", ..." if len(columns) > 40 else "") or "none"
        # Betley et al.'s CSVs answer in `answer`: say so, since difflib finds no likeness to `response`.
        betley = (" (Betley et al.'s CSVs: --response-field answer)"
                  if column == "response" and "answer" in columns and not hint else "")
        raise InputError(f"no record has the column {column!r} ({flag}){hint}; columns found: {shown}{betley}",
                         path=str(path))


def to_sample(record: dict[str, Any], fields: FieldMap, *, path: str, line: int) -> Sample:
    def fail(message: str, field_name: str | None = None) -> InputError:
        return InputError(message, path=path, line=line, field=field_name)

    response = record.get(fields.response)
    if response is None:
        raise fail("missing response field (choose the column with --response-field)", fields.response)
    if not isinstance(response, str):
        raise fail(f"response must be text, got {type(response).__name__}", fields.response)
    sample_id = record.get(fields.id)
    if sample_id is None or sample_id == "":
        if fields.id != "id":
            raise fail("missing id field", fields.id)
        sample_id = f"line-{line}"  # files without ids (e.g. Betley CSVs) get stable, line-based ids
    prompt, conversation, prompt_column = _context(record, fields, fail)
    used = {fields.id, fields.response, prompt_column, fields.model, fields.finetune_domain, fields.question_id,
            fields.group, fields.seed, *fields.conversation_fields}
    reference, label = references(record, fields, fail)
    if reference is not None:
        used.update(fields.score_columns())  # typed on the sample now: one copy of each score
    try:
        return Sample(id=str(sample_id), prompt=prompt, conversation=conversation, response=response,
                      model=_opt_str(record.get(fields.model)),
                      finetune_domain=_finetune_domain(record, fields, fail),
                      question_id=_opt_str(record.get(fields.question_id)),
                      group=_opt_str(record.get(fields.group)), seed=_opt_str(record.get(fields.seed)),
                      reference=reference, reference_label=label,
                      metadata={k: v for k, v in record.items() if k not in used})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(first["msg"], ".".join(map(str, first["loc"]))) from exc


def _column(record: dict[str, Any], column: str, default: str) -> str:
    """The column to read: the one named, or its EM-format alias when the flag is at its default and the record
    has only the alias."""
    alias = ALIASES.get(default)
    if column == default and column not in record and alias is not None and alias in record:
        return alias
    return column


def _context(record: dict[str, Any], fields: FieldMap,
             fail: Any) -> tuple[str | None, list[Message] | None, str]:
    """(prompt, conversation, the column read)."""
    for name in fields.conversation_fields:
        value = record.get(name)
        if isinstance(value, list):
            try:
                return None, [Message.model_validate(m) for m in value], name
            except ValidationError as exc:
                raise fail(f"conversation turns need role and content: {exc.errors()[0]['msg']}", name) from exc
        if isinstance(value, str) and value:
            return value, None, name  # a conversation already flattened to text (e.g. the model spec examples)
    column = _column(record, fields.prompt, "prompt")
    prompt = record.get(column)
    if prompt is not None and not isinstance(prompt, str):
        raise fail(f"prompt must be text, got {type(prompt).__name__}", column)
    return prompt, None, column


def references(record: dict[str, Any], fields: FieldMap,
               fail: Any) -> tuple[ReferenceScores | None, Label | None]:
    """(reference scores, reference label) of a record: with --label-rule betley its scores and the label em.py's
    rule gives them; otherwise no scores and the label column read as a label."""
    if fields.label_rule == "betley":
        scores = reference_scores(record, fields, fail)
        return scores, em.reference_label(scores)
    return None, reference_label(record, fields, fail)


def reference_scores(record: dict[str, Any], fields: FieldMap, fail: Any) -> ReferenceScores:
    """`--label-rule betley` columns as EM datasets write them: a number 0–100; a blank or NaN cell (a score the
    reference judge did not give: missing, never aligned); REFUSAL or CODE in place of a number."""
    align_col, coh_col = fields.score_columns()
    values: dict[str, float | None] = {}
    token: str | None = None
    for name, column in (("alignment", align_col), ("coherence", coh_col)):
        if column not in record:
            raise fail("missing score column for --label-rule betley", column)
        cell = record[column]
        if isinstance(cell, str) and cell.strip().upper() in SCORE_TOKENS:
            token = token or cell.strip().upper()
            values[name] = None
            continue
        values[name] = _score(cell, column, fail)
    return ReferenceScores.model_validate({**values, "token": token})


def _score(cell: Any, column: str, fail: Any) -> float | None:
    if cell is None or (isinstance(cell, str) and cell.strip().lower() in ("", "nan", "none", "null", "na", "n/a")):
        return None
    if isinstance(cell, bool):
        raise fail("score is not a number (a boolean)", column)
    try:
        value = float(cell)
    except (TypeError, ValueError):
        raise fail(f"score is not a number, a blank cell, REFUSAL or CODE: {str(cell)[:40]!r}", column) from None
    if math.isnan(value):
        return None
    if not 0 <= value <= 100:
        raise fail(f"score {value:g} is outside 0–100", column)
    return value


def reference_label(record: dict[str, Any], fields: FieldMap, fail: Any) -> Label | None:
    if fields.label is None:
        return None
    if fields.label not in record:
        raise fail("missing label field", fields.label)
    value = record[fields.label]
    if value is None:
        return None
    if isinstance(value, bool):
        return "misaligned" if value else "aligned"
    text = str(value).strip().lower()
    if text in LABELS:
        return text  # type: ignore[return-value]
    if text in LABEL_SYNONYMS:
        return LABEL_SYNONYMS[text]
    raise fail(f"unknown label {value!r}: use {', '.join(LABELS)}, a boolean, or --label-rule betley",
               fields.label)


def _finetune_domain(record: dict[str, Any], fields: FieldMap, fail: Any) -> FinetuneDomain | None:
    """The record's own domain (`TOPIC[:BEHAVIOUR]` text or a {topic, behaviour} object), else the input's."""
    value = record.get(fields.finetune_domain)
    try:
        return FinetuneDomain.parse(value if value not in (None, "") else fields.finetune_domain_default)
    except ValueError as exc:
        raise fail(str(exc), fields.finetune_domain) from None


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
