"""A run and its samples (and input errors) are created in one transaction; a run without samples is never
finished and never resumed (issue 11 item 5)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from overseer.cli.main import run_app
from overseer.errors import RunError
from overseer.store import open_store
from overseer.store.runs import RunTables
from overseer.types import Sample


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def write_input(path: Path, n: int = 5) -> Path:
    path.write_text("".join(f'{{"id": "s{i}", "response": "answer {i}"}}\n' for i in range(n)) + "{broken\n",
                    encoding="utf-8")
    return path


def test_create_run_stores_the_run_its_samples_and_input_errors_together(tmp_path: Path):
    store = open_store(tmp_path)
    try:
        run_id = store.create_run(input_path="in.jsonl", input_sha256=None, output_path="out.jsonl", config={},
                                  samples=[(1, Sample(id="a", response="x")), (2, Sample(id="b", response="y"))],
                                  errors=[(3, "invalid JSON", "{")], run_id="run-20260101-000000-abcd")
        assert run_id == "run-20260101-000000-abcd"
        info = store.get_run(run_id)
        assert (info.n_inputs, info.n_input_errors, info.output_path) == (2, 1, "out.jsonl")
        assert [s.id for s in store.samples(run_id)] == ["a", "b"]
        assert store.input_errors(run_id) == [(3, "invalid JSON", "{")]
    finally:
        store.close()


def test_a_failure_while_storing_the_samples_leaves_no_run(tmp_path: Path):
    store = open_store(tmp_path)
    try:
        with pytest.raises(ValueError):  # an error tuple of the wrong shape fails after the run row is written
            store.create_run(input_path="in.jsonl", input_sha256=None, output_path=None, config={},
                             samples=[(1, Sample(id="a", response="x"))], errors=[(2, "bad")])  # type: ignore[list-item]
        assert store.list_runs() == []
        assert list(store.run_samples()) == []
    finally:
        store.close()


def test_judge_interrupted_while_storing_samples_leaves_nothing_to_resume(tmp_path: Path, monkeypatch):
    data, ws = write_input(tmp_path / "in.jsonl"), tmp_path / "ws"
    stored = RunTables._put_samples

    def crash(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        stored(self, *args, **kwargs)
        raise KeyboardInterrupt  # as if Ctrl-C (or the power) struck before the commit

    monkeypatch.setattr(RunTables, "_put_samples", crash)
    code, _ = cli("judge", str(data), "--backend", "scripted:echo", "--skip-invalid", "-w", str(ws))
    assert code == 130
    monkeypatch.undo()
    store = open_store(ws)
    try:
        assert store.list_runs() == []
    finally:
        store.close()
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "--skip-invalid", "-w", str(ws), "--resume")
    assert code == 2 and "no unfinished run" in text, text


@pytest.fixture
def orphan(tmp_path: Path) -> tuple[Path, Path, str]:
    """A run row without samples, as an older overseer left it when it crashed between the two commits."""
    data, ws = write_input(tmp_path / "in.jsonl"), tmp_path / "ws"
    store = open_store(ws)
    run_id = store.create_run(input_path=str(data.resolve()), input_sha256=None, output_path=None, config={})
    store.close()
    return data, ws, run_id


def test_a_run_without_samples_cannot_be_marked_finished(orphan):
    _, ws, run_id = orphan
    store = open_store(ws)
    try:
        with pytest.raises(RunError, match="no samples"):
            store.set_status(run_id, "finished")
        assert store.get_run(run_id).status == "running"
    finally:
        store.close()


@pytest.mark.parametrize("resume", [["--resume"], ["--resume", "RUN"]])
def test_resuming_a_run_without_samples_is_an_error_not_zero_of_zero(orphan, resume):
    data, ws, run_id = orphan
    args = [run_id if a == "RUN" else a for a in resume]
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(ws), *args)
    assert code == 2, text
    assert "no samples" in text and "0/0" not in text and "Traceback" not in text
    store = open_store(ws)
    try:
        assert store.get_run(run_id).status != "finished"
    finally:
        store.close()


@pytest.mark.parametrize("content", ["", "{broken\nnot json either\n"])
def test_an_input_without_a_valid_record_makes_an_empty_run_never_finished_nor_resumable(tmp_path: Path, content):
    data, ws = tmp_path / "in.jsonl", tmp_path / "ws"
    data.write_text(content, encoding="utf-8")
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "--skip-invalid", "-w", str(ws))
    assert code == 0 and "no samples" in text, text
    store = open_store(ws)
    try:
        [run] = store.list_runs()
        assert (run.status, run.n_inputs) == ("empty", 0)
    finally:
        store.close()
    code, text = cli("judge", str(data), "--backend", "scripted:echo", "-w", str(ws), "--resume", run.id)
    assert code == 2 and "no samples" in text, text
