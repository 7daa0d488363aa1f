"""ReviewSession without a terminal: queue paging, filters, decisions, undo, memory, stats, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import judge, settings

from overseer.errors import OverseerError
from overseer.memory.store import EdgeCaseStore
from overseer.store.runs import RunStore
from overseer.tui.state import ReviewSession


@pytest.fixture(scope="module")
def queue_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return judge(tmp_path_factory.mktemp("q"), n=20)


def session(tmp_path: Path, base: tuple[Path, str], **kwargs: object) -> tuple[ReviewSession, Path, str]:
    import shutil

    workspace = tmp_path / "copy"
    shutil.copytree(base[0], workspace)
    store = RunStore(workspace / "runs.sqlite")
    return ReviewSession(store, settings(workspace), run_id=base[1], page_size=4, **kwargs), workspace, base[1]  # type: ignore[arg-type]


def test_queue_pages_filters_and_rows(tmp_path: Path, queue_ws: tuple[Path, str]) -> None:
    s, _, run_id = session(tmp_path, queue_ws, with_memory=False)
    assert s.total > 4 and s.cursor == 0 and s._pages == {}  # nothing loaded before a row is asked for
    rows = s.rows(0, s.total)
    assert [r.index for r in rows] == list(range(s.total)) and len(s._pages) == -(-s.total // 4)
    first = rows[0]
    assert first.reasons == ["judge_vs_reference"] and first.status == "pending" and first.preview.startswith("answer")
    assert first.judge_labels and first.judge_labels[0][1] == first.judge_label
    s.set_filter(search=first.sample_id)
    assert s.total == 1 and s.current is not None and s.current.sample_id == first.sample_id
    s.set_filter(search=None, reason="judge_split")
    assert s.total == 0 and s.current is None
    s.set_filter(reason=None, label="aligned")
    assert s.total and all(r.judge_label == "aligned" for r in s.rows(0, s.total))
    s.set_filter(label=None, sort="id")
    ids = [r.sample_id for r in s.rows(0, s.total)]
    assert ids == sorted(ids)
    with pytest.raises(OverseerError):
        s.set_filter(sort="nonsense")


def test_decide_undo_skip_memory_and_resume(tmp_path: Path, queue_ws: tuple[Path, str]) -> None:
    s, workspace, run_id = session(tmp_path, queue_ws, reviewer="ada", blind=True)
    first, second = s.current, s.row(1)
    assert first and second
    detail = s.detail()
    assert detail is not None and not s.revealed(detail)  # blind: verdicts hidden before the label
    s.set_note("plainly fine")
    s.cycle_generalization()
    d1 = s.decide("aligned")
    assert d1.review.reviewer == "ada" and d1.review.blind and d1.review.note == "plainly fine"
    assert d1.review.generalization == "in_domain" and d1.review.judge_label == first.judge_label
    assert s.current is not None and s.current.sample_id == second.sample_id and s.draft_note is None
    s.decide("misaligned")
    s.skip()
    s.decide("refusal")
    assert len(s.store.reviews(run_id)) == 3
    undone = s.undo()
    assert undone is not None and undone.label == "refusal"
    assert len(s.store.reviews(run_id)) == 2 and s.current is not None
    assert s.current.sample_id == undone.sample_id and s.current.status == "pending"
    memory = EdgeCaseStore(workspace / "memory")
    cases = [c for c in memory.cases().values() if c.source == "review"]
    assert len(cases) == 2 and all(c.reviewed for c in cases)
    assert {c.source_ref for c in cases} == {f"{run_id}/{first.sample_id}", f"{run_id}/{second.sample_id}"}
    assert next(c for c in cases if c.label == "aligned").rationale == "plainly fine"
    # an override keeps the previous label; undoing it restores the earlier decision
    s.goto(0)
    override = s.decide("misaligned")
    assert override.review.previous_label == "aligned"
    assert [r.label for r in s.store.reviews(run_id) if r.sample_id == first.sample_id] == ["misaligned"]
    s.undo()
    assert [r.label for r in s.store.reviews(run_id) if r.sample_id == first.sample_id] == ["aligned"]
    assert EdgeCaseStore(workspace / "memory").get(d1.review.edge_case_id or "").label == "aligned"  # type: ignore[union-attr]
    # reopening resumes at the next pending item (the undone one: the skipped one is not pending)
    again = ReviewSession(RunStore(workspace / "runs.sqlite"), settings(workspace), run_id=run_id)
    assert again.current is not None and again.current.sample_id == undone.sample_id
    counts = again.counts()
    assert counts["done"] == 2 and counts["done_today"] == 2 and counts["skipped"] == 1
    stats = again.stats()
    assert stats["n_reviews"] == 2 and len(stats["confusion"]) == 6 and stats["em_rate_betley"].rate >= 0
    # The all-responses convention keeps refusals and incoherent answers that the Betley rule excludes.
    assert stats["em_rate_all"].denominator >= stats["em_rate_betley"].denominator == stats["n_scored"] > 0
    assert stats["incoherence"].denominator == stats["em_rate_all"].denominator


def test_reviews_join_the_labelled_pool(tmp_path: Path, queue_ws: tuple[Path, str]) -> None:
    from overseer.optimize.learner import all_examples
    from overseer.optimize.pool import examples_from_reviews

    s, workspace, _ = session(tmp_path, queue_ws)
    sample_id = s.current.sample_id if s.current else ""
    s.decide("incoherent", note="word salad")
    [example] = examples_from_reviews(s.store)
    assert example.sample.id == sample_id and example.label == "incoherent" and example.source == "review"
    pool = all_examples(settings(workspace), s.store)
    assert len(pool) == 21  # 20 reference labels + the review; its memory copy is not counted twice
    assert next(e for e in reversed(pool) if e.sample.id == sample_id).label == "incoherent"
