"""overseer as an Inspect scorer: in an Inspect eval (mockllm target, in-process), through Inspect's scoring API
and through `inspect score --scorer overseer/spec_judge`; each gives the labels `overseer judge` gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_helpers import cli, run_eval

from overseer.store.runs import RunStore


def judged_labels(log: Path, ws: Path) -> dict[str, str | None]:
    code, text = cli("judge", log, "--backend", "scripted:echo", "--label-field", "label", "--no-memory", "-w", ws,
                     "-o", ws / "out.jsonl", "--json")
    assert code == 0, text
    store = RunStore(ws / "runs.sqlite")
    labels = {r.sample_id: r.aggregate.label for r in store.results(json.loads(text[text.index("{"):])["run_id"])}
    store.close()
    return labels


def score_labels(log: object, task: str) -> tuple[dict[str, str], dict[str, bool]]:
    """(sample id → label, sample id → every verdict was a cache hit) from a log's spec_judge scores."""
    labels, cached = {}, {}
    for s in log.samples:  # type: ignore[attr-defined]
        score = s.scores["spec_judge"]
        sample_id = f"{task}:{s.id}:{s.epoch}"
        labels[sample_id] = score.value["label"]
        cached[sample_id] = all(v["cached"] for v in score.metadata["verdicts"])
    return labels, cached


def test_scoring_api_on_a_judged_log_gives_the_same_labels_from_the_cache(inspect_log: Path, tmp_path: Path) -> None:
    from inspect_ai import score
    from inspect_ai.log import read_eval_log

    from overseer.inspect_scorer import spec_judge

    expected = judged_labels(inspect_log, tmp_path)
    log = read_eval_log(str(inspect_log))
    scorer = spec_judge(backend="scripted:echo", workspace=str(tmp_path), task=log.eval.task, label_field="label",
                        spec=None)
    scored = score(log, scorer, action="overwrite", display="none")
    labels, cached = score_labels(scored, log.eval.task)
    assert labels == expected and len(labels) == 6
    assert all(cached.values())  # the scorer rendered the same prompts, so it hit `overseer judge`'s entries
    # A fresh workspace has no cache: the scripted judge is told the same labels and gives the same verdicts.
    fresh = score(log, spec_judge(backend="scripted:echo", workspace=str(tmp_path / "fresh"), task=log.eval.task,
                                  label_field="label"), action="overwrite", display="none")
    labels, cached = score_labels(fresh, log.eval.task)
    assert labels == expected and not any(cached.values())
    misaligned = sum(label == "misaligned" for label in expected.values()) / 6
    by_key = {e.name: e for e in fresh.results.scores}  # type: ignore[union-attr]
    assert by_key["misaligned"].metrics["mean"].value == pytest.approx(misaligned)
    store = RunStore(tmp_path / "fresh" / "runs.sqlite")
    [run] = store.list_runs()
    assert run.input_path == "inspect-scorer:em_probe" and run.n_results == 6  # the scorer's own run
    store.close()


def test_scorer_in_an_eval_matches_overseer_judge_of_its_log(tmp_path: Path) -> None:
    from overseer.inspect_scorer import spec_judge

    log = run_eval(tmp_path / "logs", name="with_scorer", epochs=1,
                   scorer=spec_judge(backend="scripted:echo", workspace=str(tmp_path / "a"), label_field="label"))
    labels, cached = score_labels(log, "with_scorer")  # the task name came from Inspect's active sample
    assert labels == judged_labels(Path(log.location), tmp_path / "b") and not any(cached.values())
    assert set(labels.values()) == {"misaligned", "aligned", "refusal"}


def test_scorer_outside_an_eval_needs_the_task(inspect_log: Path, tmp_path: Path) -> None:
    from inspect_ai import score
    from inspect_ai.log import read_eval_log

    from overseer.inspect_scorer import spec_judge

    with pytest.raises(Exception, match="task=TASK"):
        score(read_eval_log(str(inspect_log)), spec_judge(backend="scripted:echo", workspace=str(tmp_path)),
              action="overwrite", display="none")


@pytest.mark.slow
def test_inspect_score_cli_finds_the_scorer_by_its_entry_point(inspect_log: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    expected = judged_labels(inspect_log, tmp_path)
    out = tmp_path / "rescored.eval"
    inspect_cli = Path(sys.executable).with_name("inspect")
    done = subprocess.run(
        [str(inspect_cli), "score", str(inspect_log), "--scorer", "overseer/spec_judge", "-S", "task=em_probe",
         "-S", "backend=scripted:echo", "-S", f"workspace={tmp_path}", "-S", "label_field=label",
         "--action", "overwrite", "--output-file", str(out), "--display", "none"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "INSPECT_LOG_LEVEL": "warning"},
        stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    labels, cached = score_labels(read_eval_log(str(out)), "em_probe")
    assert labels == expected and all(cached.values())


def test_the_entry_point_module_is_light() -> None:
    """Inspect imports the entry point in every eval it runs: overseer's judge stack must wait for spec_judge()."""
    code = ("import sys, overseer.inspect_scorer; "
            "heavy = [m for m in ('langgraph', 'chromadb', 'overseer.run') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
