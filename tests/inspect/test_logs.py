"""Inspect logs in (`overseer judge LOG`) and out (`overseer runs export RUN --format inspect`), through the real CLI
and read back with `inspect_ai.log.read_eval_log`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_helpers import LABELS, cli

from overseer.store.runs import RunStore


def judge(log: Path, ws: Path, *extra: str) -> str:
    code, text = cli("judge", log, "--backend", "scripted:echo", "--label-field", "label", "--no-memory",
                     "-w", ws, "-o", ws / "out.jsonl", "--json", *extra)
    assert code == 0, text
    return json.loads(text[text.index("{"):])["run_id"]


def test_judge_a_log_keeps_inspect_identity_and_scores(inspect_log: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    original = read_eval_log(str(inspect_log))
    run_id = judge(inspect_log, tmp_path)
    store = RunStore(tmp_path / "runs.sqlite")
    samples = {s.id: s for s in store.samples(run_id)}
    results = {r.sample_id: r for r in store.results(run_id)}
    store.close()
    expected = {f"em_probe:{s.id}:{s.epoch}": s for s in original.samples}
    assert set(samples) == set(results) == set(expected) and len(expected) == 6
    for sample_id, sample in samples.items():
        source = expected[sample_id]
        assert sample.response == source.output.completion
        assert [(m.role, m.content) for m in sample.conversation or []] == [
            ("user", source.input)] if isinstance(source.input, str) else [(m.role, m.text) for m in source.input]
        assert sample.model == "mockllm/model"
        assert sample.metadata["inspect_epoch"] == source.epoch and sample.metadata["inspect_task"] == "em_probe"
        assert sample.metadata["inspect_sample_id"] == source.id
        assert sample.metadata["inspect_scores"] == {"includes": source.scores["includes"].value}
        assert sample.metadata["topic"] == source.metadata["topic"]
        assert sample.reference_label == source.metadata["label"]
        assert results[sample_id].aggregate.label == source.metadata["label"]  # scripted echo of that label
    assert samples["em_probe:2:1"].conversation[0].role == "system"  # type: ignore[index]


@pytest.mark.parametrize("suffix", [".eval", ".json"])
def test_export_reads_back_every_sample_and_score(inspect_log: Path, tmp_path: Path, suffix: str) -> None:
    from inspect_ai.log import read_eval_log

    run_id = judge(inspect_log, tmp_path)
    out = tmp_path / f"export{suffix}"
    code, text = cli("runs", "export", run_id, "--format", "inspect", "-o", out, "-w", tmp_path)
    assert code == 0, text
    store = RunStore(tmp_path / "runs.sqlite")
    results = {r.sample_id: r for r in store.results(run_id)}
    store.close()
    log = read_eval_log(str(out))
    assert log.status == "success" and log.eval.model == "mockllm/model"
    assert {s.id for s in log.samples} == set(results) and len(log.samples) == 6
    for s in log.samples:
        agg = results[s.id].aggregate
        verdict = results[s.id].verdicts[0]
        score = s.scores["spec_judge"]
        assert score.value == {"label": agg.label, "alignment": agg.alignment, "coherence": agg.coherence,
                               "misaligned": int(bool(agg.betley_misaligned)),
                               "emergent": int(bool(agg.emergent_misaligned))}
        assert score.explanation == verdict.rationale
        assert score.metadata["generalization"] == agg.generalization
        assert score.metadata["clause_ids"] == verdict.clause_ids and score.metadata["evidence"] == verdict.evidence
        assert s.output.completion == s.messages[-1].text
    rate = sum(bool(r.aggregate.betley_misaligned) for r in results.values()) / 6
    by_key = {e.name: e for e in log.results.scores}
    assert by_key["misaligned"].metrics["mean"].value == pytest.approx(rate)
    assert {s.scores["spec_judge"].value["label"] for s in log.samples} == set(LABELS)


def test_unscored_export_says_unscored(inspect_log: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    code, text = cli("judge", inspect_log, "--backend", "scripted:garbage", "--no-memory", "-w", tmp_path,
                     "-o", tmp_path / "out.jsonl")
    assert code == 0, text
    store = RunStore(tmp_path / "runs.sqlite")
    [run] = store.list_runs()
    store.close()
    code, text = cli("runs", "export", run.id, "--format", "inspect", "-o", tmp_path / "x.eval", "-w", tmp_path)
    assert code == 0, text
    log = read_eval_log(str(tmp_path / "x.eval"))
    for s in log.samples:
        value = s.scores["spec_judge"].value
        assert value["label"] == "unscored" and math.isnan(value["misaligned"])
        assert s.scores["spec_judge"].metadata["verdicts"][0]["raw_text"]  # the raw reply is kept
    assert log.results.scores[0].unscored_samples == 6


def test_a_directory_of_logs(inspect_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """.eval and .json logs side by side; the sample ids of two tasks do not collide. As in `inspect view`, a .json
    file in a directory is a log only under Inspect's timestamped name (a log dir can hold other JSON)."""
    from inspect_ai.log import read_eval_log, write_eval_log

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / inspect_log.name).write_bytes(inspect_log.read_bytes())
    other = read_eval_log(str(inspect_log))
    other.eval.task = "second_task"
    write_eval_log(other, str(logs / "2026-01-02T03-04-05+00-00_second-task_abc123.json"))
    (logs / "notes.json").write_text("{}")  # not a log name: not read
    ws = tmp_path / "ws"
    monkeypatch.chdir(tmp_path)  # a relative directory, as a user types it
    run_id = judge(Path("logs"), ws)
    store = RunStore(ws / "runs.sqlite")
    ids = {r.sample_id for r in store.results(run_id)}
    store.close()
    assert len(ids) == 12 and {i.split(":")[0] for i in ids} == {"em_probe", "second_task"}


def test_bad_inputs_are_one_line_errors(tmp_path: Path, inspect_log: Path) -> None:
    not_a_log = tmp_path / "samples.json"
    not_a_log.write_text('{"id": "a", "response": "x"}\n')
    code, text = cli("judge", not_a_log, "--backend", "scripted:echo", "-w", tmp_path)
    assert code == 2 and "not a readable Inspect log" in text and "samples.json" in text and "Traceback" not in text
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = cli("judge", empty, "--backend", "scripted:echo", "-w", tmp_path)
    assert code == 2 and "no Inspect logs" in text
    run_id = judge(inspect_log, tmp_path / "ws")
    code, text = cli("runs", "export", run_id, "--format", "inspect", "-w", tmp_path / "ws")
    assert code == 2 and "needs -o FILE.eval" in text
    code, text = cli("runs", "export", run_id, "--format", "xml", "-w", tmp_path / "ws")
    assert code == 2 and "--format must be jsonl or inspect" in text
    code, text = cli("runs", "export", run_id, "--format", "inspect", "-o", tmp_path / "x.txt", "-w", tmp_path / "ws")
    assert code == 2 and ".eval or .json" in text


def test_missing_label_names_the_sample(tmp_path: Path, inspect_log: Path) -> None:
    code, text = cli("judge", inspect_log, "--backend", "scripted:echo", "--label-field", "nope", "-w", tmp_path)
    assert code == 2 and "missing label field" in text and "'nope'" in text


def test_cli_start_does_not_import_inspect() -> None:
    code = ("import sys; from overseer.cli.main import run_app; run_app(['--help']); "
            "assert 'inspect_ai' not in sys.modules, 'overseer --help imported inspect_ai'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_without_the_extra_tests_skip_but_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from inspect_helpers import require_inspect

    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # makes `import inspect_ai` raise ImportError
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_inspect()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install the inspect extra"):
        require_inspect()


def test_reading_a_log_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch, inspect_log: Path) -> None:
    from overseer.errors import ConfigError
    from overseer.inspect_logs import read_logs
    from overseer.samples_io import FieldMap

    monkeypatch.setitem(sys.modules, "inspect_ai", None)
    with pytest.raises(ConfigError, match=r"pip install 'overseer\[inspect\]'"):
        read_logs(inspect_log, FieldMap())
