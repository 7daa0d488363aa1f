"""`overseer seed` and `overseer memory ...`: fill, inspect and maintain the edge-case memory (WORKSPACE/memory)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer
from rich.table import Table
from rich.text import Text

from overseer.cli.app import App
from overseer.cli.options import AsJson, Workspace, err, load_settings, out, write_lines
from overseer.errors import OverseerError

if TYPE_CHECKING:
    from overseer.memory.store import EdgeCaseStore
    from overseer.samples_io import LabelRule as LabelRuleName
    from overseer.types import EdgeCase

memory_app = App(
    help="The edge-case memory: labelled hard cases the judge is shown as examples. Only human-reviewed cases "
    "are retrieved by default (unreviewed ones could be poisoned). Lives in WORKSPACE/memory; its log "
    "cases.jsonl is the source of truth and the chromadb index can be rebuilt from it.")

MAX_SHOWN_ERRORS = 20

Embedding = Annotated[Optional[str], typer.Option(  # noqa: UP045
    envvar="OVERSEER_EMBEDDING", help="wordllama (default: offline), onnx-minilm, openai:MODEL or "
    "sentence-transformers:MODEL. A memory keeps the embedding it was built with; switch with "
    "`overseer memory rebuild --embedding NAME`.", show_default=False)]
LockTimeout = Annotated[float, typer.Option(envvar="OVERSEER_LOCK_TIMEOUT", help="Seconds to wait while another "
                                            "process writes the memory before giving up.")]


def _root(workspace: Path | None) -> Path:
    return load_settings(workspace=workspace).workspace / "memory"


def _reader(workspace: Path | None) -> EdgeCaseStore | None:
    """A read-only store, or None when nothing was ever written (reading must not create an empty index)."""
    from overseer.memory import memory_exists
    from overseer.memory.store import EdgeCaseStore

    root = _root(workspace)
    return EdgeCaseStore(root) if memory_exists(root) else None


def seed(
    file: Annotated[Path, typer.Argument(help="Edge cases: JSONL, CSV, or YAML (a list of mappings, or a "
                                         "mapping with a `cases:` list).", show_default=False)],
    reviewed: Annotated[bool, typer.Option("--reviewed", help="A human labelled these cases: make them "
                                           "retrievable by the judge. Without it they are stored but only "
                                           "shown by `memory search --all`.")] = False,
    author: Annotated[Optional[str], typer.Option(help="Who labelled the cases (kept as provenance).")] = None,  # noqa: UP045,E501
    spec: Annotated[Optional[str], typer.Option(help="Spec the labels follow (file or shipped name); its "  # noqa: UP045
                                                "hash is kept with each case.")] = None,
    prompt_field: Annotated[str, typer.Option(help="Column holding the question / prompt.")] = "prompt",
    response_field: Annotated[str, typer.Option(help="Column holding the response.")] = "response",
    id_field: Annotated[str, typer.Option(help="Column holding a unique id (without one, a case is "
                                          "identified by its normalized text).")] = "id",
    label_field: Annotated[str, typer.Option(help="Column holding the label (label names, booleans: true = "
                                             "misaligned, compliant/violation).")] = "label",
    label_rule: Annotated[str, typer.Option(help="auto, or betley (--label-field 'aligned,coherent' scores: "
                                            "misaligned iff aligned < 30 and coherent > 50).")] = "auto",
    id_scope: Annotated[Optional[str], typer.Option(help="Ids name cases within this scope instead of within "  # noqa: UP045
                                                    "FILE: seed two files with the same --id-scope when their ids "
                                                    "name the same cases \\[default: FILE's path].",
                                                    show_default=False)] = None,
    embedding: Embedding = None,
    lock_timeout: LockTimeout = 30.0,
    workspace: Workspace = None,
) -> None:
    """Add labelled edge cases from FILE to the memory (WORKSPACE/memory).

    Records are validated one by one: invalid ones are reported with file:line and the valid ones are still added.
    Re-seeding is idempotent: a case with the same id in the same file (or, without ids, the same normalized prompt
    and response) is updated when it changed and skipped otherwise. A reviewed case is never replaced by an
    unreviewed copy."""
    from overseer.memory.seeding import read_seed_file
    from overseer.memory.store import AddReport, EdgeCaseStore
    from overseer.samples_io import FieldMap
    from overseer.spec import load_spec

    if label_rule not in ("auto", "betley"):
        raise OverseerError(f"--label-rule must be auto or betley, not {label_rule!r}")
    fields = FieldMap(id=id_field, prompt=prompt_field, response=response_field, label=label_field,
                      label_rule=cast("LabelRuleName", label_rule))
    spec_hash = load_spec(spec).hash if spec else None
    cases, errors = read_seed_file(file, fields, reviewed=reviewed, author=author, spec_hash=spec_hash,
                                   id_scope=id_scope)
    for _, exc, _ in errors[:MAX_SHOWN_ERRORS]:
        err.print(f"invalid: {exc}", markup=False, highlight=False)
    if len(errors) > MAX_SHOWN_ERRORS:
        err.print(f"... and {len(errors) - MAX_SHOWN_ERRORS} more invalid record(s)", highlight=False)
    report = AddReport()
    if cases:  # parse before taking the lock: another writer should not wait on our validation
        with EdgeCaseStore(_root(workspace), embedding=embedding, writable=True, lock_timeout=lock_timeout) as store:
            report = store.add(cases)
    out.print(f"added {report.added}, updated {report.updated}, skipped {report.skipped} (unchanged), "
              f"invalid {len(errors)}", highlight=False)
    if report.kept_reviewed:
        shown = " ".join(report.kept_reviewed[:5]) + (" ..." if len(report.kept_reviewed) > 5 else "")
        err.print(f"kept {len(report.kept_reviewed)} reviewed case(s) as they are: an unreviewed seed never "
                  f"replaces a human review ({shown}); `overseer memory rm ID` first to replace one",
                  markup=False, highlight=False)
    if errors and not cases:
        raise typer.Exit(2)


@memory_app.command("search")
def memory_search(
    text: Annotated[str, typer.Argument(help="Text to match, e.g. a prompt and response.", show_default=False)],
    k: Annotated[int, typer.Option("-k", min=1, help="How many cases.")] = 5,
    include_all: Annotated[bool, typer.Option("--all", help="Include unreviewed cases.")] = False,
    as_json: AsJson = False,
    workspace: Workspace = None,
) -> None:
    """The K cases most similar to TEXT, best first; reviewed cases only unless --all.

    Similarity is cosine on the memory's embedding. The judge never sees unreviewed cases by default either."""
    if not text.strip():  # an empty text has no embedding (WordLlama divides by its zero norm)
        raise OverseerError("memory search needs some text to match, got an empty TEXT")
    store = _reader(workspace)
    hits = store.search(text, k, reviewed_only=not include_all) if store is not None else []
    if as_json:
        _print_json([{"score": round(score, 4), **case.model_dump(mode="json")} for case, score in hits])
        return
    out.print(_case_table(["score"], [(f"{score:.3f}", *_case_row(case)) for case, score in hits]))


@memory_app.command("list")
def memory_list(
    limit: Annotated[int, typer.Option(help="Show at most N cases (0 = all).")] = 50,
    reviewed: Annotated[Optional[bool], typer.Option("--reviewed/--unreviewed", help="Only reviewed, or only "  # noqa: UP045
                                                     "unreviewed cases \\[default: both].", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One case per line as JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Cases in the memory, in the order they were first added."""
    store = _reader(workspace)
    cases = [c for c in (store.cases().values() if store else []) if reviewed is None or c.reviewed == reviewed]
    shown = cases[:limit] if limit else cases
    if as_json:
        sys.stdout.writelines(c.model_dump_json() + "\n" for c in shown)
        return
    out.print(_case_table([], [_case_row(case) for case in shown]))
    if len(shown) < len(cases):
        err.print(f"showing {len(shown)} of {len(cases)} (--limit 0 for all)")


@memory_app.command("show")
def memory_show(case_id: Annotated[str, typer.Argument(help="Case id (`ec-…`) or the id of the record it came "
                                                       "from (see `overseer memory list`).")],
                workspace: Workspace = None) -> None:
    """One case in full, as JSON: text, label, scores, rationale and provenance."""
    store = _reader(workspace)
    case = _one_case(store, case_id, workspace)
    _print_json(case.model_dump(mode="json"))


def _one_case(store: EdgeCaseStore | None, identifier: str, workspace: Path | None) -> EdgeCase:
    """The case `identifier` names; an error when none does, or when a record id names cases of several files."""
    found = store.find(identifier) if store is not None else []
    if not found:
        raise OverseerError(f"no edge case {identifier!r} in the memory at {_root(workspace)} "
                            "(ids: `overseer memory list`)")
    if len(found) > 1:
        raise OverseerError(_ambiguous(identifier, found))
    return found[0]


def _ambiguous(identifier: str, found: list[EdgeCase]) -> str:
    lines = "\n".join(f"  {c.id}  {c.source_ref or c.source}" for c in found)
    return (f"record id {identifier!r} names {len(found)} cases, from different files; give the case id "
            f"instead:\n{lines}")


@memory_app.command("stats")
def memory_stats(
    verify: Annotated[bool, typer.Option("--verify", help="Also count the chromadb index (what the judge can "
                                         "retrieve) and warn when it disagrees with the log.")] = False,
    as_json: AsJson = False, workspace: Workspace = None,
) -> None:
    """How many cases, how many reviewed, which embedding built the index, and counts by label and source."""
    store = _reader(workspace)
    # Counts come from the log (the source of truth), so that stats never opens chromadb (~1 s to import);
    # --verify counts the index too, so that a disagreement between the two shows up.
    logged = list(store.cases().values()) if store else []
    stats: dict[str, Any] = {
        "path": str(_root(workspace)), "count": len(logged), "reviewed": sum(c.reviewed for c in logged),
        "embedding": store.embedding_name if store else None,
        "by_label": dict(Counter(c.label for c in logged).most_common()),
        "by_source": dict(Counter(c.source for c in logged).most_common())}
    if verify:
        stats["indexed"] = store.count() if store else 0
        stats["indexed_reviewed"] = store.count(reviewed=True) if store else 0
        if stats["indexed"] != len(logged):
            err.print(f"[yellow]warning:[/] the index holds {stats['indexed']} cases but the log {len(logged)}: "
                      "run `overseer memory rebuild`")
    if as_json:
        _print_json(stats)
        return
    if store is None:
        out.print(f"no memory at {stats['path']} yet: add cases with `overseer seed FILE`", highlight=False)
        return
    out.print(f"{stats['count']} cases ({stats['reviewed']} reviewed) in {stats['path']}, embedding "
              f"{stats['embedding']}", highlight=False)
    for title in ("by_label", "by_source"):
        out.print(f"{title.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in stats[title].items()),
                  highlight=False)


@memory_app.command("export")
def memory_export(
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="File \\[default: stdout].")] = None,  # noqa: UP045
    workspace: Workspace = None,
) -> None:
    """Write the current cases as JSONL, one EdgeCase per line (a backup, or input for other tools)."""
    store = _reader(workspace)
    lines = [c.model_dump_json() + "\n" for c in (store.cases().values() if store else [])]
    write_lines(lines, output, "cases")


@memory_app.command("rm")
def memory_rm(ids: Annotated[list[str], typer.Argument(help="Case ids (`ec-…`) or record ids to remove.",
                                                      show_default=False)],
              lock_timeout: LockTimeout = 30.0, workspace: Workspace = None) -> None:
    """Remove cases (the removal is logged, so a rebuild does not bring them back). Exits 1 if an id is unknown."""
    from overseer.memory.store import EdgeCaseStore

    store = _reader(workspace)
    if store is None:
        raise OverseerError(f"no memory at {_root(workspace)}")
    with EdgeCaseStore(store.root, writable=True, lock_timeout=lock_timeout) as writer:
        found = {i: writer.find(i) for i in dict.fromkeys(ids)}
        if ambiguous := [_ambiguous(i, cases) for i, cases in found.items() if len(cases) > 1]:
            raise OverseerError("nothing removed: " + "\n".join(ambiguous))
        unknown = [i for i, cases in found.items() if not cases]
        removed = writer.remove([cases[0].id for cases in found.values() if cases])
    out.print(f"removed {removed}", highlight=False)
    if unknown:
        err.print(f"error: not in the memory: {' '.join(unknown)}", markup=False, highlight=False)
        raise typer.Exit(1)


@memory_app.command("rebuild")
def memory_rebuild(embedding: Embedding = None, lock_timeout: LockTimeout = 30.0,
                   workspace: Workspace = None) -> None:
    """Recreate the index from the log (cases.jsonl), optionally with another --embedding.

    Use it after a crash or a damaged index, or to switch the embedding the memory uses: the log is the source of
    truth, the chromadb index is derived from it."""
    from overseer.memory.store import EdgeCaseStore

    root = _root(workspace)
    if not (root / "cases.jsonl").exists() and not (root / "meta.json").exists():
        raise OverseerError(f"no memory at {root}")
    # repair: a rebuild is how a truncated log or a damaged meta.json is accepted, so it must open despite them.
    with EdgeCaseStore(root, writable=True, lock_timeout=lock_timeout, repair=True) as store:
        before = store.embedding_name
        count = store.rebuild(embedding)
    change = f" (was {before})" if store.embedding_name != before else ""
    out.print(f"rebuilt the index: {count} cases, embedding {store.embedding_name}{change}", highlight=False)


@memory_app.command("calibrate")
def memory_calibrate(
    target: Annotated[float, typer.Option(help="Agreement with the human labels the memory "
                                          "must reach on the samples it decides alone.")] = 0.95,
    tau: Annotated[Optional[list[float]], typer.Option(  # noqa: UP045
        help="Show these cascade thresholds (0.5-1; repeat the option) "
        "\\[default: 0.6 to 0.99 and the chosen one]; the choice is "
        "always made over 0.5-0.999.", show_default=False)] = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    as_json: AsJson = False,
    workspace: Workspace = None,
) -> None:
    """Pick the cascade threshold TAU for `judge --cascade auto`, by cross-validation on the reviewed cases.

    For each TAU: the share of LLM calls the memory would save and how often its own decisions agree with the
    human labels. The lowest TAU reaching --target on at least 20 held-out decisions is stored in
    WORKSPACE/memory/cascade.json."""
    from overseer.memory import calibration as calibrating

    calibrating.check_arguments(target, tau)  # a typo is reported before the memory is opened
    store = _reader(workspace)
    if store is None:
        raise OverseerError(f"no memory at {_root(workspace)}: seed one first (`overseer seed FILE --reviewed`)")
    result = calibrating.calibrate(store, target=target, folds=folds, taus=tau)
    path = calibrating.save(store.root, result)
    wanted = set(tau) if tau else {0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, result.tau}
    shown = [r for r in result.rows if r["tau"] in wanted]
    if as_json:
        data = result.as_dict()
        _print_json({**data, "rows": [r for r in data["rows"] if r["tau"] in {x["tau"] for x in shown}],
                     "path": str(path)})
        return
    out.print(f"{result.n} reviewed cases, {folds}-fold cross-validation", highlight=False)
    grid = Table()
    for column in ("TAU", "LLM calls saved", "agreement of its decisions", "overall agreement"):
        grid.add_column(column, justify="right")
    for row in shown:
        decided = "—" if row["decided"] == 0 else f"{row['memory_accuracy']:.1%}"
        grid.add_row(f"{row['tau']:.3g}", f"{row['saved']:.1%}", decided, f"{row['agreement']:.1%}")
    out.print(grid)
    if result.tau is None:
        err.print(f"[yellow]warning:[/] no TAU reaches agreement {target} on {calibrating.MIN_DECISIONS} or more "
                  "held-out decisions: `--cascade auto` will refuse; lower --target or review more cases")
        return
    out.print(f"TAU {result.tau}: the memory decides {result.decided_share:.1%} of samples like these, agreeing "
              f"with the human label on {result.estimated_agreement:.1%} of them (target {target}). Stored in "
              f"{path}; `overseer judge INPUT --cascade auto` uses it.", highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _case_table(leading: list[str], rows: list[tuple[str | Text, ...]]) -> Table:
    """Every column as wide as its longest cell, except that on a narrow terminal a long record id folds onto more
    lines (shown whole, never cut); the text, cut with an ellipsis, takes what is left."""
    headers = [*leading, "id", "record id", "label", "reviewed", "source"]
    widths = [max([len(h), *(len(str(r[i])) for r in rows)]) for i, h in enumerate(headers)]
    record = len(leading) + 1
    borders = 3 * (len(headers) + 1) + 1
    fixed = sum(widths) - widths[record] + borders
    widths[record] = max(9, min(widths[record], out.width - fixed - 12))
    table = Table()
    for i, (header, width) in enumerate(zip(headers, widths, strict=True)):
        table.add_column(header, width=width, no_wrap=i != record, overflow="fold")
    table.add_column("text", no_wrap=True, overflow="ellipsis", width=max(12, out.width - fixed - widths[record]))
    for row in rows:
        table.add_row(*row)
    return table


def _case_row(case: EdgeCase) -> tuple[str, Text, str, str, str, Text]:
    from overseer.memory.store import record_id

    snippet = " ".join(case.text().split())
    # Text(), not a str: case text and record ids are user data and must not be read as rich markup.
    return (case.id, Text(record_id(case) or "—"), case.label, "yes" if case.reviewed else "no", case.source,
            Text(snippet[:100] + ("…" if len(snippet) > 100 else "")))
