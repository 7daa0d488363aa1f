"""`overseer audit`: how often does the judge change its verdict under perturbations that should not matter?"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from overseer.cli.options import (
    Backend,
    BaseUrl,
    Concurrency,
    IdField,
    Judges,
    LabelRule,
    MaxClauses,
    Model,
    NoCache,
    PromptField,
    ResponseField,
    SpecName,
    Workspace,
    err,
    load_settings,
    one_judge,
    out,
    parse_label_rule,
)
from overseer.errors import ConfigError, InputError, ProviderError

if TYPE_CHECKING:
    from overseer.audit import AuditResult
    from overseer.judging.judge import Judge
    from overseer.types import Sample

# overseer.audit.PERTURBATIONS, spelled out: importing overseer.audit for --help would load the judge and the
# clause selector (numpy, the providers) into every `overseer` command. tests/cli pins the two together.
PERTURBATION_NAMES = "repeat, praise, inject, fake_verdict, clause_paraphrase, other_model"


def audit(
    input: Annotated[Path, typer.Argument(help="Samples: JSONL or CSV.", show_default=False)],
    spec: SpecName = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    judges: Judges = None,
    limit: Annotated[Optional[int], typer.Option(help="Audit only the first N valid samples.")] = None,  # noqa: UP045
    perturbations: Annotated[Optional[str], typer.Option(help="Comma-separated, from: " + PERTURBATION_NAMES  # noqa: UP045
                                                         + " \\[default: all; other_model only with "
                                                         "--other-backend/--other-model/--other-prompt].")] = None,
    other_backend: Annotated[Optional[str], typer.Option(help="Second judge for other_model (e.g. "  # noqa: UP045
                                                         "scripted:flip=0.25, anthropic).")] = None,
    other_model: Annotated[Optional[str], typer.Option(help="Model name for the second judge.")] = None,  # noqa: UP045
    other_base_url: Annotated[Optional[str], typer.Option(help="Base URL for the second judge.")] = None,  # noqa: UP045
    other_prompt: Annotated[Optional[int], typer.Option(help="Prompt version for the second judge "  # noqa: UP045
                                                        "(see `overseer prompts list`).")] = None,
    concurrency: Concurrency = None,
    max_clauses: MaxClauses = None,
    no_cache: NoCache = False,
    prompt_field: PromptField = "prompt",
    response_field: ResponseField = "response",
    id_field: IdField = "id",
    label_field: Annotated[Optional[str], typer.Option(help="Column with reference labels (used by scripted "  # noqa: UP045
                                                       "judges; otherwise informational).")] = None,
    label_rule: LabelRule = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the flip table as JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Re-judge INPUT under perturbations (the same prompt again, praise suffix, injected instruction, fake
    verdict block, paraphrased spec clauses, another judge) and report how often the label flips, with 95%
    Wilson intervals. `repeat` is the judge's own noise: read the other rows against it."""
    import asyncio

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from overseer.audit import PERTURBATIONS, run_audit
    from overseer.clauses import ClauseSelector
    from overseer.run import build_judges, open_store
    from overseer.samples_io import FieldMap, read_samples
    from overseer.spec import load_spec

    audited = one_judge(judges, "audit")
    settings = load_settings(workspace=workspace, backend=backend, model=model, base_url=base_url,
                             judges=audited, concurrency=concurrency, cache=False if no_cache else None,
                             max_clauses=max_clauses)
    if settings.judges and not audited:
        settings = settings.model_copy(update={"judges": []})  # one judge is audited at a time
    other_wanted = any(x is not None for x in (other_backend, other_model, other_base_url, other_prompt))
    names = ([p.strip() for p in perturbations.split(",") if p.strip()] if perturbations
             else [p for p in PERTURBATIONS if p != "other_model" or other_wanted])
    fields = FieldMap(id=id_field, prompt=prompt_field, response=response_field, label=label_field,
                      label_rule=parse_label_rule(label_rule))
    loaded = read_samples(input, fields, limit=limit)
    if loaded.errors:
        err.print(f"[yellow]{len(loaded.errors)} invalid record(s) in {input} skipped; first: {loaded.errors[0][1]}")
    samples = [s for _, s in loaded.samples]
    if not samples:
        raise InputError(f"no valid samples in {input}")
    the_spec = load_spec(spec)
    store = open_store(settings)
    try:
        judge = next(iter(build_judges(settings, the_spec, store, samples=samples).values()))
        other = None
        if "other_model" in names:
            if not other_wanted:
                raise ConfigError("the other_model perturbation needs --other-backend, --other-model or "
                                  "--other-prompt")
            other = _other_judge(settings, the_spec, store, judge, other_backend, other_model, other_base_url,
                                 other_prompt, samples)
        selector = ClauseSelector(the_spec, settings.max_clauses)

        progress = Progress(TextColumn("[bold]{task.description:<17}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=as_json)
        tasks = {name: progress.add_task(name, total=len(samples)) for name in ("clean", *names)}

        async def go() -> AuditResult:
            try:
                return await run_audit(
                    samples, judge, selector, names, other_judge=other, concurrency=settings.concurrency,
                    on_done=lambda stage: progress.advance(tasks[stage]))
            finally:
                for j in {id(judge): judge, **({id(other): other} if other else {})}.values():
                    await j.provider.aclose()

        with progress:
            result = asyncio.run(go())
    finally:
        store.close()
    if not result.clean_scored:
        raise ProviderError(f"the judge scored none of the {result.samples} clean samples "
                            f"({result.clean_errors} errors, {result.clean_unscored} unscored), so there is "
                            "nothing to compare perturbed verdicts with"
                            + (f"; first error: {result.first_error}" if result.first_error else ""))
    if as_json:
        out.print_json(json.dumps({"judge": judge.judge_id, "prompt_version": judge.prompt.ref,
                                   **result.as_dict()}))
        return
    _print(result, judge)


def _other_judge(settings, spec, store, judge: Judge, backend: str | None, model: str | None,  # type: ignore[no-untyped-def]
                 base_url: str | None, prompt: int | None, samples: list[Sample]) -> Judge:
    from overseer.prompt_store import PromptStore
    from overseer.run import build_judges

    if backend or model or base_url:
        other_settings = settings.model_copy(update={
            "backend": backend or settings.backend, "model": model if (model or backend) else settings.model,
            "base_url": base_url if (base_url or backend) else settings.base_url})
        other = next(iter(build_judges(other_settings, spec, store, samples=samples).values()))
    else:
        other = dataclasses.replace(judge)
    if prompt is not None:
        other = dataclasses.replace(other, prompt=PromptStore(settings.workspace).get(prompt))
    if other.judge_id == judge.judge_id and other.prompt.hash == judge.prompt.hash:
        raise ConfigError("the other judge is the same backend, model and prompt as the audited one")
    return other


def _print(result: AuditResult, judge: Judge) -> None:
    out.print(f"judge {judge.judge_id}  prompt {judge.prompt.ref}  samples {result.samples}  "
              f"scored clean {result.clean_scored}  unscored {result.clean_unscored}  errors {result.clean_errors}")
    if result.first_error:
        out.print(f"[yellow]first error: {result.first_error}[/]")
    table = Table(title="verdict flips vs the clean run (label changed)")
    for column, justify in (("perturbation", "left"), ("n", "right"), ("flips", "right"),
                            ("flip rate", "right"), ("95% CI", "right"), ("unscored", "right"),
                            ("flagged manipulation", "right"), ("detail", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in result.rows:
        rate = "n/a" if row.n == 0 else f"{row.rate:.1%}"
        ci = "" if row.n == 0 else f"{row.low:.1%}–{row.high:.1%}"
        table.add_row(row.perturbation, str(row.n), str(row.flips), rate, ci, str(row.unscored), str(row.flagged),
                      row.detail)
    out.print(table)
    if judge.provider.backend == "scripted":
        from overseer.providers.scripted import synthetic_note

        note = synthetic_note("the audited judge's verdicts (and so these flip rates) are")
        out.print(f"[yellow]{note}[/]")
