"""Issue 13 items 5 and 7: a prompt is validated as it will serve (every configured judge, the run's clause count
and prices, the memory's edge cases minus the item's own copy), and the gate also holds the score-based EM rate
(and, where labels carry one, the emergent-only rate) to the labels'."""

from __future__ import annotations

import asyncio
from pathlib import Path

from overseer.config import load_settings
from overseer.judging.judge import EdgeCaseExample
from overseer.optimize.em_check import em_drift
from overseer.optimize.learner import make_optimizer
from overseer.optimize.optimizer import Budget, Gate
from overseer.optimize.pool import Example
from overseer.optimize.serving import Served
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.types import EdgeCase, Label, Sample


def pool(n: int = 120) -> list[Example]:
    return [Example(Sample(id=f"s{i:03d}", prompt=f"question {i}", response=f"answer number {i}",
                           metadata={"trap": "finance"} if i % 4 == 1 else {}),
                    "misaligned" if i % 3 == 0 else "aligned") for i in range(n)]


def test_every_configured_judge_the_runs_clause_count_and_prices_serve_the_validation(tmp_path: Path) -> None:
    settings = load_settings(workspace=str(tmp_path), judges=["scripted:rules", "scripted:rules@second"],
                             reflection_backend="scripted:reflect=fix_finance", max_clauses=2, temperature=0.3,
                             prices={"scripted": (1000.0, 1000.0)})
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        opt = make_optimizer(settings, store, load_spec(None), examples=pool())
        assert [p.model for p in opt.serving.providers] == ["scripted-rules", "second"]
        assert opt.serving.params.temperature == 0.3 and opt.serving.max_clauses == 2
        [outcome] = asyncio.run(opt.run(1))
    finally:
        store.close()
    assert outcome.status == "accepted", outcome.reason
    for provider in opt.serving.providers:
        assert provider.calls > 0  # type: ignore[attr-defined]
        shown = [m[0].content.count("### [") for m in provider.seen_messages]  # type: ignore[attr-defined]
        assert shown and max(shown) <= 2
    assert opt.budget.spent_usd > 0.01  # the configured price of a "scripted" model, not the built-in table's 0
    assert outcome.metrics["judge_backend"] == "scripted@scripted-rules scripted@second"
    assert {"em_labels", "em_parent", "em_candidate"} <= set(outcome.metrics)


def test_a_dollar_budget_counts_the_configured_prices(tmp_path: Path) -> None:
    settings = load_settings(workspace=str(tmp_path), backend="scripted:rules",
                             reflection_backend="scripted:reflect=fix_finance", prices={"scripted": (1000.0, 1000.0)})
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        opt = make_optimizer(settings, store, load_spec(None), examples=pool(), budget=Budget(usd=0.001))
        [outcome] = asyncio.run(opt.run(1))
    finally:
        store.close()
    assert outcome.status == "budget" and "dollar budget spent" in outcome.reason


class FakeMemory:
    """What Serving asks of overseer.memory.judge_memory.JudgeMemory: similar ids, their examples, the cases."""

    def __init__(self, cases: list[EdgeCase]) -> None:
        self.cases = {c.id: c for c in cases}
        self.store = self

    def similar_ids(self, _sample: Sample) -> list[str]:
        return list(self.cases)

    def examples(self, ids: list[str]) -> list[EdgeCaseExample]:
        return [EdgeCaseExample(i, self.cases[i].text(), self.cases[i].label) for i in ids]

    def get(self, case_id: str) -> EdgeCase | None:
        return self.cases.get(case_id)


def test_edge_cases_are_shown_as_in_a_run_but_never_the_items_own_copy(tmp_path: Path) -> None:
    own = EdgeCase(id="ec-own", prompt="Question 7", response="  answer   NUMBER 7 ", label="misaligned",
                   source="seed", reviewed=True)
    other = EdgeCase(id="ec-other", prompt="something else", response="another answer", label="aligned",
                     source="seed", reviewed=True)
    settings = load_settings(workspace=str(tmp_path), backend="scripted:rules",
                             reflection_backend="scripted:reflect=fix_finance")
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        opt = make_optimizer(settings, store, load_spec(None), examples=pool())
        opt.serving.memory = FakeMemory([own, other])
        item = Sample(id="jbb-7", prompt="question 7", response="answer number 7")
        assert [c.id for c in opt.serving.edge_cases(item)] == ["ec-other"]  # same content, other id: excluded
        [outcome] = asyncio.run(opt.run(1))
    finally:
        store.close()
    seen = "\n".join(x.content for m in opt.serving.providers[0].seen_messages for x in m)  # type: ignore[attr-defined]
    assert outcome.status in ("accepted", "rejected") and "another answer" in seen


def served(labels: list[Label], alignment: float, coherence: float = 90.0) -> list[Served]:
    return [Served(label, alignment if label == "misaligned" else 90.0, coherence) for label in labels]


def test_a_rewrite_that_improves_labels_but_moves_the_em_rate_away_is_rejected() -> None:
    truth: list[Label] = [*["misaligned"] * 20, *["aligned"] * 40]  # type: ignore[list-item]
    parent: list[Label | None] = [*["aligned"] * 12, *["misaligned"] * 8, *["aligned"] * 40]  # type: ignore[list-item]
    candidate: list[Label | None] = list(truth)  # every label right
    consistent = (served(parent, 10.0), served(candidate, 10.0))  # type: ignore[arg-type]
    ok, why, measured = Gate(delta=0.02).decide(truth, parent, candidate, [], [], [], served=consistent)
    assert ok, why
    assert (measured["em_labels"], measured["em_parent"], measured["em_candidate"]) == (20 / 60, 8 / 60, 20 / 60)
    # The same labels, but the candidate scores every answer below alignment 30: the score rule that reports
    # the EM rate now counts all 60 as misaligned, farther from the labels' 20 than the parent's 8.
    drifted = [Served(c, 10.0, 90.0) for c in candidate]
    ok, why, _ = Gate(delta=0.02).decide(truth, parent, candidate, [], [], [], served=(consistent[0], drifted))
    assert not ok and "EM rate" in why and "moves away from the labels'" in why


def test_the_emergent_only_rate_is_held_to_the_labels_generalization_levels() -> None:
    truth: list[Label] = [*["misaligned"] * 10, *["aligned"] * 10]  # type: ignore[list-item]
    levels = ["emergent"] * 5 + ["in_domain"] * 5 + [None] * 10
    parent = [Served(t, 10.0 if t == "misaligned" else 90.0, 90.0, "emergent" if i < 5 else "in_domain")
              for i, t in enumerate(truth)]
    same_em_more_emergent = [Served(s.label, s.alignment, s.coherence, "emergent") for s in parent]
    why, measured = em_drift(truth, levels, parent, same_em_more_emergent)  # type: ignore[arg-type]
    assert why is not None and "emergent-only" in why and measured["n_levels"] == 10
    assert em_drift(truth, levels, parent, parent)[0] is None  # type: ignore[arg-type]


def test_each_item_records_its_label_provenance_and_history_gives_kappa_per_provenance(tmp_path: Path) -> None:
    import contextlib
    import io
    import json
    import sqlite3

    from overseer.cli.main import run_app

    examples = pool()
    for i, e in enumerate(examples):  # in threes, so each provenance holds both classes (κ is defined)
        e.provenance = ("human", "reference", "seed")[(i // 3) % 3]
    settings = load_settings(workspace=str(tmp_path), backend="scripted:rules",
                             reflection_backend="scripted:reflect=fix_finance")
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        opt = make_optimizer(settings, store, load_spec(None), examples=examples)
        assert "labels: 42 human, 39 reference, 39 seed" in opt.pool.describe()
        [outcome] = asyncio.run(opt.run(1))
        sides = store.split_provenance()
    finally:
        store.close()
    assert outcome.status == "accepted", outcome.reason
    assert sum(sides["validation"].values()) == len(opt.pool.validation) and "unknown" not in sides["validation"]
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("SELECT provenance, label FROM pool_split WHERE provenance = 'human' LIMIT 1").fetchone()
    for provenance in ("human", "reference", "seed"):
        assert f"kappa_val_{provenance}" in outcome.metrics and f"n_val_{provenance}" in outcome.metrics

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        assert run_app(["prompts", "history", "--json", "-w", str(tmp_path)]) == 0
    [row] = json.loads(buffer.getvalue())
    assert set(row["by_provenance"]["val"]) == {"human", "reference", "seed"}
    assert row["by_provenance"]["val"]["human"]["n"] == outcome.metrics["n_val_human"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        assert run_app(["prompts", "history", "-w", str(tmp_path)]) == 0
    assert "κ val by label source" in buffer.getvalue() and "human 1.000" in buffer.getvalue()


def test_labels_human_keeps_only_review_decisions() -> None:
    from overseer.optimize.pool import choose_labels

    examples = pool(9)
    for i, e in enumerate(examples):
        e.provenance = ("human", "reference", "seed")[i % 3]
    assert [e.sample.id for e in choose_labels(examples, "human")] == ["s000", "s003", "s006"]
    assert choose_labels(examples, "all") == examples
