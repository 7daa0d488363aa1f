"""`overseer review` (the Textual review app) and `overseer reviews list` (the decisions, for scripts)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional, get_args

import typer
from rich.table import Table

from overseer.cli.app import App
from overseer.cli.options import (
    Backend,
    BaseUrl,
    Judges,
    LearnLabels,
    Model,
    ReflectionBackend,
    Workspace,
    err,
    judge_specs,
    load_settings,
    open_store,
    out,
    parse_learn_labels,
)
from overseer.errors import ConfigError

reviews_app = App(help="Human review decisions made in `overseer review`.")

RunOption = Annotated[Optional[str], typer.Option("--run", help="Only this run \\[default: every run].",  # noqa: UP045
                                                  show_default=False)]


def review(
    run: RunOption = None,
    reason: Annotated[Optional[str], typer.Option(help="Only items queued for this reason (judge_split, "  # noqa: UP045
                                                  "judge_vs_memory, low_confidence, near_threshold, "
                                                  "judge_vs_reference, unscored, manipulation_attempt).",
                                                  show_default=False)] = None,
    blind: Annotated[bool, typer.Option("--blind", help="Hide the judges' verdicts and labels, the reference "
                                        "label and the review reasons that give a label away until you have "
                                        "labelled the item (the review records that it was blind).")] = False,
    reviewer: Annotated[Optional[str], typer.Option(envvar="OVERSEER_REVIEWER", help="Name kept with each "  # noqa: UP045
                                                    "decision \\[default: your login name].",
                                                    show_default=False)] = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    judges: Judges = None,
    reflection_backend: ReflectionBackend = None,
    labels: LearnLabels = None,
    learn_every: Annotated[Optional[int], typer.Option(help="Reviews per improvement round "  # noqa: UP045
                                                       "\\[default: 20].", show_default=False)] = None,
    workspace: Workspace = None,
) -> None:
    """Review the queue of items the judges were unsure about, one key per label.

    Opens on the queue (enter opens an item). Every decision is saved by a background writer in key order (a
    key never waits on a locked store; quitting waits until all are saved; reopening resumes at the next
    pending item) and becomes a reviewed edge case in the memory. Every --learn-every reviews a prompt-
    improvement round is recorded and run by a background `overseer improve`; the app never calls a model
    itself and shows the round's outcome when it lands. Press ? in the app for the keys."""
    from overseer.tui.app import ReviewApp
    from overseer.tui.state import ReviewSession
    from overseer.types import ReviewReason

    if reason is not None and reason not in get_args(ReviewReason):  # else the app opens on an empty queue
        raise ConfigError(f"--reason {reason!r} is no review reason; use one of "
                          f"{', '.join(get_args(ReviewReason))}")
    settings = load_settings(workspace=workspace, backend=backend, model=model, base_url=base_url,
                             judges=judge_specs(judges), reflection_backend=reflection_backend,
                             learn_every=learn_every, improve_labels=parse_learn_labels(labels))
    store = open_store(settings)
    try:
        session = ReviewSession(store, settings, run_id=run, reason=reason, blind=blind, reviewer=reviewer)
        try:
            ReviewApp(session).run()
        finally:
            session.close()  # however the app ended, the decisions it queued are committed
    finally:
        store.close()


@reviews_app.command("list")
def reviews_list(
    run: RunOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One decision per line as JSON.")] = False,
    include_inactive: Annotated[bool, typer.Option("--all", help="Include undone and overridden decisions.")] = False,
    workspace: Workspace = None,
) -> None:
    """The human decisions: run, sample id, label, reviewer, time, blind (oldest first)."""
    from overseer.store.runs import RunStore

    settings = load_settings(workspace=workspace)
    path = settings.workspace / "runs.sqlite"
    if not path.exists():
        rows = []
    else:
        store = RunStore(path)
        try:
            if run:
                store.get_run(run)
            rows = store.reviews(run, include_inactive=include_inactive)
        finally:
            store.close()
    if as_json:
        sys.stdout.writelines(json.dumps(r.__dict__) + "\n" for r in rows)
        return
    table = Table()
    for column in ("run", "sample id", "label", "judge", "reviewer", "time", "blind", "status"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.run_id, r.sample_id, r.label, r.judge_label or "unscored", r.reviewer, r.created_at[:19],
                      "yes" if r.blind else "no", r.status)
    out.print(table)
    if not rows:
        err.print(f"no reviews in {settings.workspace} yet: `overseer review` starts a session", highlight=False)
