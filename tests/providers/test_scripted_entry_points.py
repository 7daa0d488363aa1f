"""Every entry point that judges tells a scripted backend the labels and metadata of the samples it is about to
judge, when it builds it: `judge` (and its resume, from the run store), `audit`, the optimizer's pool (human,
reference and memory labels alike) and the review app's improvement round."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path

import pytest

from overseer.cli.main import run_app
from overseer.config import load_settings
from overseer.optimize.learner import make_optimizer
from overseer.optimize.pool import Example, shipped_golden
from overseer.providers.scripted import ScriptedProvider
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.tui.state import ReviewSession
from overseer.types import Sample

N = 12


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def label_of(i: int) -> str:
    return "misaligned" if i % 3 == 0 else "aligned"


def write_input(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(N):
            f.write(json.dumps({"id": f"s{i:02d}", "prompt": f"question {i}", "response": f"answer number {i}",
                                "label": label_of(i), "trap": "finance" if i % 4 == 1 else "none"}) + "\n")
    return path


EXPECTED = {f"s{i:02d}": label_of(i) for i in range(N)}


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedProvider]:
    """Every scripted backend an entry point builds, in order."""
    made: list[ScriptedProvider] = []
    original = ScriptedProvider.from_spec.__func__  # type: ignore[attr-defined]

    def spy(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(provider := original(cls, *args, **kwargs))
        return provider

    monkeypatch.setattr(ScriptedProvider, "from_spec", classmethod(spy))
    return made


def test_judge_tells_the_scripted_judge_the_input_labels_and_metadata(tmp_path: Path, built) -> None:
    data = write_input(tmp_path / "in.jsonl")
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:echo", "-w",
                     str(tmp_path / "ws"), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    [provider] = built
    assert provider.labels == EXPECTED
    assert provider.metadata["s01"]["trap"] == "finance"
    assert "synthetic" in text


def test_a_resumed_judge_gets_the_labels_from_the_run_store(tmp_path: Path, built) -> None:
    data, ws, out = write_input(tmp_path / "in.jsonl"), tmp_path / "ws", tmp_path / "out.jsonl"
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:echo", "--json",
                     "-w", str(ws), "-o", str(out))
    assert code == 0, text
    run_id = json.loads(text[text.index("{"):])["run_id"]
    undone = [f"s{i:02d}" for i in range(0, N, 2)]
    with sqlite3.connect(ws / "runs.sqlite") as db:  # as if the run had died with half the samples judged
        db.executemany("DELETE FROM results WHERE run_id = ? AND sample_id = ?", [(run_id, s) for s in undone])
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
    out.write_text("")
    # No --label-field: the labels come from the samples the run recorded.
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "--resume", run_id, "--no-cache", "-w",
                     str(ws))
    assert code == 0, text
    assert built[-1].labels == EXPECTED and built[-1].calls == len(undone)
    store = RunStore(ws / "runs.sqlite")
    try:
        judged = {r.sample_id: r.aggregate.label for r in store.results(run_id)}
    finally:
        store.close()
    assert judged == EXPECTED


def test_audit_tells_the_audited_and_the_other_judge_the_labels(tmp_path: Path, built) -> None:
    data = write_input(tmp_path / "in.jsonl")
    code, text = cli("audit", str(data), "--label-field", "label", "--backend", "scripted:echo", "--perturbations",
                     "praise,other_model", "--other-backend", "scripted:flip=0.5", "--json", "-w", str(tmp_path / "ws"))
    assert code == 0, text
    assert [p.labels for p in built] == [EXPECTED, EXPECTED]
    assert built[0].metadata["s05"]["trap"] == "finance"


def test_the_optimizer_judge_is_told_the_pool_labels_whatever_their_source(tmp_path: Path) -> None:
    def sample(i: int, reference: str | None) -> Sample:
        return Sample(id=f"p{i}", prompt="q", response=f"answer {i}", reference_label=reference,  # type: ignore[arg-type]
                      metadata={"n": i})

    examples = [Example(sample(i, "aligned"), "aligned") for i in range(10)]
    examples.append(Example(sample(3, "aligned"), "misaligned", source="review"))  # a human overrides p3
    examples.append(Example(sample(20, None), "refusal", source="memory"))  # a memory case: no reference label
    golden = [Example(sample(30, "misaligned"), "misaligned", source="golden")]
    settings = load_settings(workspace=str(tmp_path), backend="scripted:rules",
                             reflection_backend="scripted:reflect=noop")
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        optimizer = make_optimizer(settings, store, load_spec(None), examples=examples, golden=golden)
    finally:
        store.close()
    judge, reflection = optimizer.judge_provider, optimizer.reflection_provider
    assert isinstance(judge, ScriptedProvider) and isinstance(reflection, ScriptedProvider)
    shipped = {e.sample.id: e.label for e in shipped_golden()}  # overseer's own golden set is always in the pool
    assert judge.labels == {**{f"p{i}": "aligned" for i in range(10)}, "p3": "misaligned", "p20": "refusal",
                            "p30": "misaligned", **shipped}
    assert judge.metadata["p20"] == {"n": 20}
    assert reflection.labels == {}  # the reflection model judges nothing


def test_the_review_apps_round_judges_with_the_humans_label(tmp_path: Path, built) -> None:
    data, ws = write_input(tmp_path / "in.jsonl"), tmp_path / "ws"
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:flip=0.5", "-w", str(ws),
                     "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    store = RunStore(ws / "runs.sqlite")
    settings = load_settings(workspace=ws, backend="scripted:echo", reflection_backend="scripted:reflect=noop")
    session = ReviewSession(store, settings, with_memory=False)
    try:
        item = session.current
        assert item is not None
        human = "refusal"  # neither the reference label nor anything the judge said
        session.decide(human)  # type: ignore[arg-type]
        # Issue 13.8: the app's round is `overseer improve` with the session's flags, in a process of its own;
        # run here in-process (the same command line) so the providers it builds can be inspected.
        from overseer.tui.improvements import improve_argv

        code, text = cli(*improve_argv(settings, spec=None, seed=store.count_reviews())[3:])
        assert code == 0, text
    finally:
        store.close()
    judge = built[-2]  # the round's judge, then its reflection model
    assert judge.rule == "echo" and judge.labels[item.sample_id] == human
    shipped = {e.sample.id: e.label for e in shipped_golden()}  # overseer's own golden set is always in the pool
    assert {k: v for k, v in judge.labels.items() if k != item.sample_id} == {
        **{k: v for k, v in EXPECTED.items() if k != item.sample_id}, **shipped}
