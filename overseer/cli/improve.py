"""`overseer improve`: run prompt-improvement rounds on everything labelled in the workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from overseer.cli.options import (
    Backend,
    BaseUrl,
    Judges,
    LearnLabels,
    Model,
    ReflectionBackend,
    SpecName,
    Workspace,
    err,
    judge_specs,
    load_settings,
    open_store,
    out,
    parse_learn_labels,
)
from overseer.errors import OverseerError


def improve(
    rounds: Annotated[int, typer.Option(min=1, help="Improvement rounds to run (each proposes one candidate).")] = 1,
    budget_calls: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="Stop once this many LLM calls were spent.")] = None,
    budget_usd: Annotated[Optional[float], typer.Option(  # noqa: UP045
        min=0.0, help="Stop once this many dollars were spent.")] = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    judges: Judges = None,
    reflection_backend: ReflectionBackend = None,
    labels: LearnLabels = None,
    golden: Annotated[Optional[Path], typer.Option(help="Pinned golden set (JSONL/CSV with reference labels, "  # noqa: UP045
                                                   "e.g. adversarial cases), added to overseer's own: never "
                                                   "used to propose, a rewrite that agrees less with it is "
                                                   "rejected.")] = None,
    golden_label_field: Annotated[str, typer.Option(help="Label column of the golden file.")] = "label",
    spec: SpecName = None,
    minibatch: Annotated[Optional[int], typer.Option(help="Train samples judged per round \\[default: 12].")] = None,  # noqa: UP045,E501
    delta: Annotated[Optional[float], typer.Option(help="Minimum κ gain on validation \\[default: 0.02].")] = None,  # noqa: UP045,E501
    seed: Annotated[int, typer.Option(help="Seed of the minibatches (the train / validation / test "
                                            "split is frozen by content and never reseeded).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcomes as JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Rewrite the active judging prompt from the labelled pool (--labels: human reviews only, or also reference
    labels of past runs and seeded edge cases): judge a train minibatch, ask the reflection model for a revision
    of the failures, and accept it only if it agrees better with the labels on the validation split (κ gain ≥ δ,
    interval excluding 0, significant after correcting for every earlier look at that split), keeps the
    score-based EM rate no farther from the labels', and is no worse on the golden set (overseer's own, plus
    --golden). Every configured judge validates, with the runs' edge cases, clause count, generation settings
    and prices. The split is frozen; an accepted version's κ on the held-out test split is recorded. An
    interrupted round resumes where it stopped (under the same backends; otherwise it is abandoned, recorded).
    A round that fails exits non-zero."""
    import asyncio

    from overseer.optimize.learner import all_examples, golden_path_examples, make_optimizer
    from overseer.optimize.optimizer import Budget
    from overseer.optimize.pool import choose_labels
    from overseer.samples_io import FieldMap
    from overseer.spec import load_spec

    settings = load_settings(workspace=workspace, backend=backend, model=model, base_url=base_url,
                             judges=judge_specs(judges), reflection_backend=reflection_backend,
                             improve_minibatch=minibatch, improve_delta=delta,
                             improve_labels=parse_learn_labels(labels))
    store = open_store(settings)
    try:
        examples = choose_labels(all_examples(settings, store), settings.improve_labels)
        gold = golden_path_examples(golden, FieldMap(label=golden_label_field))
        if len(examples) < 10:
            which = " (--labels human: review decisions only)" if settings.improve_labels == "human" else ""
            raise OverseerError(f"only {len(examples)} labelled samples in {settings.workspace}{which}: judge a "
                                "file with --label-field, seed reviewed edge cases, or review, first")
        optimizer = make_optimizer(settings, store, load_spec(spec), examples=examples, golden=gold,
                                   budget=Budget(rounds=rounds, calls=budget_calls, usd=budget_usd), seed=seed,
                                   on_event=lambda msg: err.print(msg, highlight=False))
        err.print(f"labelled pool: {optimizer.pool.describe()}", highlight=False)
        err.print(f"validating as served: {optimizer.serving.describe()}", highlight=False)
        outcomes = asyncio.run(optimizer.run())
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps([o.__dict__ for o in outcomes], default=str))
    else:
        for o in outcomes:
            out.print(f"{o.round_id}: {o.status} — {o.reason}", highlight=False)
        out.print(f"spent: {optimizer.budget.spent_calls} LLM calls, ${optimizer.budget.spent_usd:.4f} (at the "
                  f"configured prices); active prompt: v{optimizer.prompts.active().version}", highlight=False)
    if failed := [o for o in outcomes if o.status == "failed"]:
        # Loud: a script must not take a round that proposed nothing for one that was judged and rejected.
        raise OverseerError(f"optimizer round {failed[-1].round_id} failed: {failed[-1].reason}")
