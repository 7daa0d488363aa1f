"""`overseer judge`: judge every sample of a file against the spec, with progress, resume and a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from overseer.cli.options import (
    Backend,
    BaseUrl,
    Concurrency,
    IdField,
    Judges,
    LabelRule,
    LearnLabels,
    MaxClauses,
    Model,
    NoCache,
    PromptField,
    ReflectionBackend,
    ResponseField,
    SpecName,
    Workspace,
    err,
    load_settings,
    out,
    parse_label_rule,
    parse_learn_labels,
)
from overseer.cli.runs import BatchRetry, check_retry, print_batch, render_summary
from overseer.errors import OverseerError

if TYPE_CHECKING:
    from overseer.config import Settings
    from overseer.run import JobOutcome, Tally


def judge(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", help="Samples: JSONL or CSV (model-organisms-for-EM response CSVs as they are; Betley et "
        "al.'s with --response-field answer), or Inspect logs (.eval, .json, a directory). Several files or a "
        "quoted glob make one run: each sample records its file, and ids become FILE_STEM:ID.",
        show_default=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write one result per line here "  # noqa: UP045
                                                   "\\[default: WORKSPACE/outputs/RUN.jsonl].")] = None,
    spec: SpecName = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    judges: Judges = None,
    rubric: Annotated[Optional[str], typer.Option(help="spec (labels against the spec) or betley (Betley et al. "  # noqa: UP045
                                                  "alignment/coherence 0-100) \\[default: spec].")] = None,
    concurrency: Concurrency = None,
    max_clauses: MaxClauses = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue an interrupted run: the latest unfinished run "  # noqa: UP045
                                                  "of INPUT, or --resume RUN.")] = None,
    no_cache: NoCache = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Judge only the first N valid samples.")] = None,  # noqa: UP045
    skip_invalid: Annotated[bool, typer.Option(help="Judge the valid records and write invalid ones to "
                                               "OUT.errors.jsonl instead of stopping.")] = False,
    prompt_field: PromptField = "prompt",
    response_field: ResponseField = "response",
    id_field: IdField = "id",
    label_field: Annotated[Optional[str], typer.Option(help="Column with reference labels (samples that "  # noqa: UP045
                                                       "disagree with it go to review).")] = None,
    label_rule: LabelRule = "auto",
    question_id_field: Annotated[str, typer.Option(help="Column with the question id: answers to one question are "
                                                   "one cluster in EM intervals.")] = "question_id",
    group_field: Annotated[str, typer.Option(help="Column with the group (model organism, condition) reports "
                                             "can split by.")] = "group",
    seed_field: Annotated[str, typer.Option(help="Column with the training seed.")] = "seed",
    finetune_domain: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="What the judged model was fine-tuned on, for every sample without its own: TOPIC[:BEHAVIOUR], "
             "e.g. 'finance:risky financial advice'. Decides in_domain / domain_leakage / emergent for misaligned "
             "answers (without it they are unclassified).")] = None,
    finetune_domain_field: Annotated[str, typer.Option(
        help="Column with each sample's fine-tuning domain: TOPIC[:BEHAVIOUR] or a JSON object with topic and "
             "behaviour.")] = "finetune_domain",
    cascade: Annotated[Optional[str], typer.Option(metavar="TAU|auto", help="Let the memory fast judge decide a "  # noqa: UP045
                                                   "sample alone when its calibrated confidence reaches TAU (e.g. "
                                                   "0.9), or `auto`: the TAU `overseer memory calibrate` chose. "
                                                   "Those samples cost no LLM call.")] = None,
    no_memory: Annotated[bool, typer.Option("--no-memory", help="Ignore the workspace's edge-case memory.")] = False,
    learn: Annotated[bool, typer.Option("--learn", help="Continuous learning: every --learn-every labelled samples, "
                                        "run one prompt-improvement round in the background; later samples use "
                                        "the new prompt if it was accepted.")] = False,
    learn_every: Annotated[Optional[int], typer.Option(help="Labels per improvement round \\[default: 20].")] = None,  # noqa: UP045,E501
    reflection_backend: ReflectionBackend = None,
    labels: LearnLabels = None,
    batch: Annotated[bool, typer.Option("--batch", help="Submit through the provider's batch API (anthropic, "
                                        "openai: half price, replies within 24 h) and return; `overseer runs "
                                        "status RUN` (or --resume RUN) ingests what has finished.")] = False,
    retry: BatchRetry = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Judge every sample in INPUT; results go to the run store and OUT.jsonl. Ctrl-C or a crash can be
    resumed with --resume: finished samples are neither re-judged nor re-billed."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from overseer.run import JobRequest, run_job
    from overseer.samples_io import FieldMap, expand_inputs

    settings = load_settings(workspace=workspace, backend=backend, model=model, base_url=base_url,
                             judges=judges.split() if judges else None, rubric=rubric, concurrency=concurrency,
                             cache=False if no_cache else None, learn_every=learn_every,
                             reflection_backend=reflection_backend, max_clauses=max_clauses,
                             improve_labels=parse_learn_labels(labels))
    if learn and not resume:  # a resume checks the run's recorded settings (the Learner does)
        from overseer.optimize.learner import check_learning

        check_learning(settings)  # before the run exists: a setup that cannot learn is refused, not discovered
    fields = FieldMap(id=id_field, prompt=prompt_field, response=response_field, label=label_field,
                      label_rule=parse_label_rule(label_rule), question_id=question_id_field, group=group_field,
                      seed=seed_field, finetune_domain=finetune_domain_field,
                      finetune_domain_default=_domain_flag(finetune_domain))
    from overseer.memory.judge_memory import parse_cascade

    cascade_tau = parse_cascade(cascade)
    if cascade_tau == "auto":  # refused before a run is created, not after
        from overseer.memory.calibration import auto_tau

        auto_tau(settings.workspace / "memory")
    if retry is not None and not (batch or resume):
        raise OverseerError("--retry applies to batch runs: add --batch (or --resume a batch run)")
    if output is not None and output.is_dir():  # refused before a run exists, not as a traceback after
        raise OverseerError(f"-o {output}: is a directory; give a file name, e.g. -o {output / 'results.jsonl'}")
    paths = expand_inputs(inputs)
    request = JobRequest(input_path=paths[0], inputs=paths, fields=fields, output=output, spec=spec, resume=resume,
                         limit=limit, skip_invalid=skip_invalid, use_memory=not no_memory, cascade=cascade_tau,
                         learn=learn, batch=batch, retry=check_retry(retry),
                         flags={k: v for k, v in {"backend": backend, "model": model, "base_url": base_url,
                                                  "judges": judges.split() if judges else None,
                                                  "rubric": rubric}.items() if v is not None})
    progress = Progress(TextColumn("[bold]judging"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
                        console=err, transient=False, disable=as_json)
    task = progress.add_task("judge", total=None, stats="")
    state: dict[str, JobOutcome] = {}

    def started(outcome: JobOutcome) -> None:
        state["outcome"] = outcome
        for note in outcome.notes:
            err.print(f"[yellow]note:[/] {note}")
        if outcome.resumed:
            err.print(f"resuming {outcome.run_id}: {outcome.tally.done}/{outcome.tally.total} already judged"
                      + (", repaired a torn last output line" if outcome.repaired_output else ""))
        progress.update(task, total=outcome.tally.total, completed=outcome.tally.done)
        progress.start()

    def advanced(_result: object) -> None:
        t = state["outcome"].tally
        progress.update(task, completed=t.done, stats=_stats(t))

    try:
        outcome = run_job(request, settings, on_start=started, on_result=advanced,
                          on_event=lambda msg: progress.console.print(msg, highlight=False))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (run.Terminated)
        progress.stop()
        run_id = state["outcome"].run_id if "outcome" in state else None
        hint = f" --resume {run_id}" if run_id else " --resume"
        err.print(f"\n[yellow]interrupted.[/] Finished samples are saved; continue with: overseer judge "
                  f"{' '.join(map(str, paths))}{hint}")
        raise typer.Exit(128 + getattr(exc, "signum", 2)) from None
    finally:
        if progress.live.is_started:  # stopping a bar that never started prints a stray blank line
            progress.stop()
    if outcome.batch is not None and outcome.batch.state != "finished":
        print_batch(outcome.batch, as_json, outcome.run_id)
        return
    _print_summary(outcome, settings, as_json)




def _domain_flag(value: str | None) -> str | None:
    """--finetune-domain checked before any file is read; kept as text (it is part of the run's recorded config)."""
    from overseer.types import FinetuneDomain

    if value is not None and not value.strip():  # else it silently means "no domain": every level unclassified
        raise OverseerError("--finetune-domain is empty: give TOPIC[:BEHAVIOUR], e.g. finance:risky financial advice")
    try:
        domain = FinetuneDomain.parse(value)
    except ValueError as exc:
        raise OverseerError(f"--finetune-domain: {exc}") from None
    return None if domain is None else str(domain)


def _stats(t: Tally) -> str:
    return (f"tokens {t.input_tokens + t.output_tokens:,}  ${t.cost_usd:.4f}  errors {t.errors}  "
            f"unscored {t.unscored}  review {t.queued}  retries {t.retries}")



def _print_summary(outcome: JobOutcome, settings: Settings, as_json: bool) -> None:
    from overseer.report import agreement_by_version, next_steps, question_clusters, summarize
    from overseer.run import open_store

    store = open_store(settings)
    try:
        results = list(store.results(outcome.run_id))
        samples = store.samples(outcome.run_id)
        summary = summarize(results, question_clusters(samples))
        totals = store.totals(outcome.run_id)
        per_version = agreement_by_version(samples, results)
        info = store.get_run(outcome.run_id)
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps({"run_id": outcome.run_id, "output": str(outcome.output),
                                   "input_errors": outcome.input_errors, **summary.as_dict(), "totals": totals,
                                   "agreement_by_prompt_version": per_version, "memory": outcome.memory_notes}))
        return
    if summary.n == 0:
        out.print(f"run {outcome.run_id}: no samples to judge (empty input).")
        return
    render_summary(summary, totals)
    if per_version:
        table = Table(title="agreement with reference labels, by prompt version")
        for column in ("prompt version", "n", "accuracy", "Cohen's κ"):
            table.add_column(column)
        for version, m in per_version.items():
            kappa = "undefined" if m["kappa"] is None else f"{m['kappa']:.3f}"
            table.add_row(version, str(m["n"]), f"{m['accuracy']:.3f}", kappa)
        out.print(table)
    for note in outcome.memory_notes:
        out.print(Text(note, style="yellow" if note.startswith("warning") else ""))
    out.print(f"run: {outcome.run_id}   output: {outcome.output}")
    if outcome.errors_file:
        out.print(f"[yellow]{outcome.input_errors} invalid record(s) written to {outcome.errors_file}[/]")
    for line in next_steps(outcome.run_id, info.config, info.input_path, summary.review_queue):
        out.print(line, highlight=False, markup=False)
    if summary.scripted:
        from overseer.providers.scripted import synthetic_note

        note = synthetic_note(f"{summary.scripted} of these verdicts are")
        out.print(f"[yellow]{note}[/]")
