"""`overseer eval`: agreement of a run's verdicts with the reference labels of its input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from overseer.cli.options import (
    IdField,
    LabelRule,
    PromptField,
    ResponseField,
    Workspace,
    err,
    load_settings,
    open_store,
    out,
    parse_label_rule,
)
from overseer.errors import ConfigError, InputError, OverseerError

if TYPE_CHECKING:
    from overseer.config import Settings


def evaluate(
    input: Annotated[Path, typer.Argument(help="Samples with reference labels (JSONL or CSV).", show_default=False)],
    label_field: Annotated[str, typer.Option(help="Column with the reference label.")],
    run: Annotated[Optional[str], typer.Option(help="Run to evaluate \\[default: the latest run of INPUT].")] = None,  # noqa: UP045,E501
    results: Annotated[Optional[Path], typer.Option(help="Evaluate a results JSONL (from judge -o) instead "  # noqa: UP045
                                                    "of a run.")] = None,
    plot_path: Annotated[Optional[Path], typer.Option("--plot", help="Draw the confusion matrix and EM rate "  # noqa: UP045
                                                      "per question to this PNG.")] = None,
    prompt_field: PromptField = "prompt",
    response_field: ResponseField = "response",
    id_field: IdField = "id",
    label_rule: LabelRule = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Agreement of verdicts with reference labels: accuracy, Cohen's κ, confusion matrix, per clause."""
    from overseer.providers.scripted import scripted_verdicts, synthetic_note
    from overseer.report import agreement, plot, unmatched
    from overseer.samples_io import FieldMap, read_samples

    if plot_path is not None and plot_path.suffix.lower() != ".png":
        raise ConfigError(f"--plot writes a PNG: give a file name ending in .png, not {plot_path}")
    settings = load_settings(workspace=workspace)
    fields = FieldMap(id=id_field, prompt=prompt_field, response=response_field, label=label_field,
                      label_rule=parse_label_rule(label_rule))
    loaded = read_samples(input, fields)
    if loaded.errors:
        err.print(f"[yellow]{len(loaded.errors)} invalid record(s) in {input} ignored; first: {loaded.errors[0][1]}")
    samples = [s for _, s in loaded.samples]
    by_id, source = _load_results(settings, input, run, results)
    if (why := unmatched(samples, by_id, source, str(input))) is not None:
        raise OverseerError(why)
    metrics = agreement(samples, by_id)
    scripted = scripted_verdicts(by_id.values())
    if plot_path:
        try:
            plot(str(plot_path), metrics, samples, by_id)
        except OSError as exc:
            raise ConfigError(f"--plot {plot_path}: cannot write it ({exc.strerror or exc})") from None
    if as_json:
        out.print_json(json.dumps({**metrics.as_dict(), "scripted_verdicts": scripted}))
        return
    if scripted:
        note = synthetic_note(f"{scripted} of the verdicts evaluated here are")
        out.print(f"[yellow]{note}[/]")
    out.print(f"n = {metrics.n} scored pairs ({metrics.unscored} unscored, {metrics.missing} not judged); "
              f"{'binary: violation vs not' if metrics.binary else 'all labels'}")
    accuracy = "n/a" if metrics.accuracy is None else f"{metrics.accuracy:.4f}"
    out.print(f"accuracy = {accuracy}   Cohen's κ = {metrics.kappa:.4f}")
    table = Table(title="confusion (rows: reference, columns: verdict)")
    table.add_column("")
    for label in metrics.labels:
        table.add_column(label, justify="right")
    for label, row in zip(metrics.labels, metrics.confusion, strict=False):
        table.add_row(label, *map(str, row))
    out.print(table)
    if metrics.per_clause:
        clauses = Table(title="accuracy per clause")
        clauses.add_column("clause")
        clauses.add_column("n", justify="right")
        clauses.add_column("accuracy", justify="right")
        for clause, m in metrics.per_clause.items():
            clauses.add_row(clause, str(int(m["n"])), f"{m['accuracy']:.3f}")
        out.print(clauses)
    if plot_path:
        out.print(f"plot: {plot_path}")


def _load_results(settings: Settings, input: Path, run: str | None, results: Path | None) -> tuple[dict, str]:
    """The results by sample id, and where they came from (for messages)."""

    if results is not None:
        return _read_results(results), str(results)
    store = open_store(settings)
    try:
        if run is None:
            latest = store.latest_for_input(str(input.resolve()))
            if latest is None:
                raise OverseerError(f"no run of {input} in {settings.workspace}; judge it first or pass "
                                    "--run / --results")
            run = latest.id
        info = store.get_run(run)
        return {r.sample_id: r for r in store.results(run)}, f"run {run} (judged on {info.input_path})"
    finally:
        store.close()


def _read_results(path: Path) -> dict:
    """A results JSONL written by `judge -o`; a line that is not one is an error naming it, as for any input."""
    from pydantic import ValidationError

    from overseer.types import SampleResult

    by_id = {}
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    result = SampleResult.model_validate_json(line)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(map(str, first["loc"]))
                    raise InputError(f"not a result line of `overseer judge -o`: {first['msg']}", path=str(path),
                                     line=number, field=where or None) from None
                by_id[result.sample_id] = result
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"--results: cannot read it ({why})", path=str(path)) from None
    if not by_id:
        raise InputError("--results holds no results (an empty file?)", path=str(path))
    return by_id
