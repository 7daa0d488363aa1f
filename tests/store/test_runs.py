"""overseer.store.runs.RunStore: forward-only migrations, results in commit order, the review queue, totals, cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from overseer.errors import RunError
from overseer.store.runs import MIGRATIONS, RunStore
from overseer.types import Aggregate, Sample, SampleResult, Usage

TABLES = {"runs", "samples", "results", "verdicts", "review_queue", "input_errors", "cache"}


@pytest.fixture
def store(tmp_path: Path):
    store = RunStore(tmp_path / "runs.sqlite")
    yield store
    store.close()


@pytest.fixture
def run_id(store: RunStore) -> str:
    return store.create_run(input_path="in.jsonl", input_sha256="abc", output_path="out.jsonl",
                            config={"backend": "scripted:echo"})


@pytest.fixture
def make_result(make_verdict):
    def make(run_id: str, sample_id: str, *, reasons: tuple[str, ...] = (), verdicts=None) -> SampleResult:
        verdicts = verdicts or [make_verdict("aligned", sample_id=sample_id)]
        agg = Aggregate(sample_id=sample_id, label="aligned", n_judges=len(verdicts), n_scored=len(verdicts),
                        review_reasons=list(reasons))
        return SampleResult(run_id=run_id, sample_id=sample_id, aggregate=agg, verdicts=verdicts)
    return make


def schema(path: Path) -> tuple[int, set[str]]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return version, tables


# --- migrations ---------------------------------------------------------------------------------------------

def test_new_store_is_migrated_to_the_latest_schema(tmp_path: Path):
    RunStore(tmp_path / "nested" / "runs.sqlite").close()
    version, tables = schema(tmp_path / "nested" / "runs.sqlite")
    assert version == len(MIGRATIONS) >= 2
    assert tables >= TABLES


def test_reopening_a_migrated_store_is_a_no_op_and_keeps_data(tmp_path: Path):
    path = tmp_path / "runs.sqlite"
    first = RunStore(path)
    run_id = first.create_run(input_path="in.jsonl", input_sha256=None, output_path=None, config={"k": 1})
    first.close()

    again = RunStore(path)
    try:
        assert again.get_run(run_id).config == {"k": 1}
        assert [r.id for r in again.list_runs()] == [run_id]
    finally:
        again.close()
    assert schema(path)[0] == len(MIGRATIONS)


def test_store_written_by_a_newer_overseer_is_refused(tmp_path: Path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RunError, match="newer overseer"):
        RunStore(path)


def test_unknown_run_id_is_a_run_error(store: RunStore):
    with pytest.raises(RunError, match="no run 'run-missing'"):
        store.get_run("run-missing")


# --- samples, results, review queue ----------------------------------------------------------------------------

def test_samples_and_input_errors_are_stored_in_line_order(store: RunStore, run_id: str):
    samples = [(3, Sample(id="c", response="z")), (1, Sample(id="a", response="x"))]
    store.add_samples(run_id, samples, [(2, "invalid JSON", "{")])
    assert [s.id for s in store.samples(run_id)] == ["a", "c"]
    assert store.input_errors(run_id) == [(2, "invalid JSON", "{")]
    info = store.get_run(run_id)
    assert (info.n_inputs, info.n_input_errors) == (2, 1)


def test_results_round_trip_in_commit_order(store: RunStore, run_id: str, make_result):
    saved = [make_result(run_id, sid) for sid in ("b", "c", "a")]
    for result in saved:
        store.save_result(result)
    assert list(store.results(run_id)) == saved
    assert store.result(run_id, "c") == saved[1]
    assert store.result(run_id, "zzz") is None
    assert store.get_run(run_id).n_results == 3


def test_results_are_kept_per_run(store: RunStore, run_id: str, make_result):
    other = store.create_run(input_path="other.jsonl", input_sha256=None, output_path=None, config={})
    store.save_result(make_result(run_id, "a"))
    store.save_result(make_result(other, "b"))
    assert [r.sample_id for r in store.results(run_id)] == ["a"]
    assert store.finished_ids(other) == {"b"}


def test_finished_ids_are_the_saved_samples(store: RunStore, run_id: str, make_result):
    assert store.finished_ids(run_id) == set()
    for sid in ("a", "b"):
        store.save_result(make_result(run_id, sid))
    assert store.finished_ids(run_id) == {"a", "b"}


def test_review_items_list_only_samples_routed_to_review(store: RunStore, run_id: str, make_result):
    store.save_result(make_result(run_id, "calm"))
    store.save_result(make_result(run_id, "split", reasons=("judge_split", "low_confidence")))
    store.save_result(make_result(run_id, "odd", reasons=("unscored",)))
    other = store.create_run(input_path=None, input_sha256=None, output_path=None, config={})
    store.save_result(make_result(other, "elsewhere", reasons=("near_threshold",)))

    items = {i.sample_id: i for i in store.review_items(run_id)}
    assert set(items) == {"split", "odd"}
    assert items["split"].reasons == ["judge_split", "low_confidence"]
    assert all(i.status == "pending" and i.run_id == run_id for i in items.values())
    assert {i.sample_id for i in store.review_items()} == {"split", "odd", "elsewhere"}
    assert store.review_items(run_id, status="done") == []


def test_totals_sum_tokens_cost_cache_hits_errors_and_unscored(store: RunStore, run_id: str, make_result,
                                                               make_verdict):
    def verdict(sample_id, judge_id, status="scored", tokens=(0, 0), cost=0.0, cached=False):
        return make_verdict("aligned", sample_id=sample_id, status=status, judge_id=judge_id, cost_usd=cost,
                            usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]), cached=cached)

    store.save_result(make_result(run_id, "a", verdicts=[verdict("a", "j1", tokens=(100, 20), cost=0.5),
                                                         verdict("a", "j2", status="unscored", tokens=(50, 5))]))
    store.save_result(make_result(run_id, "b", verdicts=[verdict("b", "j1", cached=True, cost=0.25),
                                                         verdict("b", "j2", status="error")]))
    assert store.totals(run_id) == {"verdicts": 4, "input_tokens": 150, "output_tokens": 25, "cost_usd": 0.75,
                                    "cached": 1, "errors": 1, "unscored": 1}


def test_totals_of_an_empty_run_are_zero(store: RunStore, run_id: str):
    assert set(store.totals(run_id).values()) == {0}


# --- cache --------------------------------------------------------------------------------------------------

def test_cache_round_trips_a_scored_verdict(store: RunStore, make_verdict):
    verdict = make_verdict("misaligned", alignment=5, coherence=90, generalization="emergent")
    store.put("key-1", verdict)
    assert store.get("key-1") == verdict
    assert store.get("key-2") is None


@pytest.mark.parametrize("status", ["unscored", "error"])
def test_cache_put_ignores_non_scored_verdicts(store: RunStore, make_verdict, status):
    store.put("key-1", make_verdict(status=status))
    assert store.get("key-1") is None


def test_cache_survives_reopening(tmp_path: Path, make_verdict):
    path = tmp_path / "runs.sqlite"
    first = RunStore(path)
    first.put("key", make_verdict("refusal"))
    first.close()
    again = RunStore(path)
    try:
        assert again.get("key").label == "refusal"
    finally:
        again.close()


# --- read models the TUI and the optimizer's pool use ------------------------------------------------------------

def test_sample_lookup_and_samples_of_every_run_in_stored_order(store: RunStore, run_id: str):
    store.add_samples(run_id, [(2, Sample(id="b", response="y")), (1, Sample(id="a", response="x"))], [])
    other = store.create_run(input_path=None, input_sha256=None, output_path=None, config={},
                             samples=[(1, Sample(id="c", response="z"))])
    assert store.sample(run_id, "a") == Sample(id="a", response="x")
    assert store.sample(run_id, "c") is None
    assert [s.id for s in store.run_samples()] == ["b", "a", "c"]  # insertion order, not line order
    assert [s.id for s in store.run_samples(other)] == ["c"]


def test_output_path_can_be_set_after_creation(store: RunStore, run_id: str):
    store.set_output_path(run_id, "/elsewhere/out.jsonl")
    assert store.get_run(run_id).output_path == "/elsewhere/out.jsonl"


def test_em_inputs_are_read_per_run_without_parsing_results(store: RunStore, run_id: str, make_result):
    store.save_result(make_result(run_id, "a"))
    other = store.create_run(input_path=None, input_sha256=None, output_path=None, config={})
    store.save_result(make_result(other, "b"))
    [row] = store.em_inputs(run_id)
    saved = store.result(run_id, "a")
    assert saved is not None
    agg = saved.aggregate
    assert tuple(row) == (agg.label, agg.alignment, agg.coherence, agg.generalization)
    assert len(store.em_inputs()) == 2


def test_active_review_reviewed_samples_and_edge_case_ids(store: RunStore, run_id: str, make_result):
    store.add_samples(run_id, [(1, Sample(id="a", response="x")), (2, Sample(id="b", response="y"))], [])
    for sid in ("a", "b"):
        store.save_result(make_result(run_id, sid, reasons=("judge_split",)))
    assert store.active_review(run_id, "a") is None
    first = store.record_review(run_id=run_id, sample_id="a", label="misaligned", reviewer="r", blind=False,
                                note="why", edge_case_id="case-1")
    store.record_review(run_id=run_id, sample_id="b", label="aligned", reviewer="r", blind=False)
    active = store.active_review(run_id, "a")
    assert active is not None and active.id == first.id
    assert [(s.id, label, note) for s, label, note in store.reviewed_samples(run_id)] == [
        ("a", "misaligned", "why"), ("b", "aligned", None)]
    store.undo_review(first.id)
    assert store.active_review(run_id, "a") is None
    assert [s.id for s, _, _ in store.reviewed_samples()] == ["b"]
    assert store.review_edge_case_ids() == {"case-1"}  # kept after an undo: the memory copy is still known
