"""Scripted output is flagged wherever it is shown: `eval`, `runs show`, `prompts history` (and the prompt
version accepted on it records the backends that produced it), and the review app's stats."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

from overseer.cli.main import run_app
from overseer.config import load_settings
from overseer.optimize.optimizer import Gate, Optimizer
from overseer.optimize.pool import Example, split_pool
from overseer.prompt_store import PromptStore
from overseer.providers.scripted import Script, ScriptedProvider
from overseer.spec import load_spec
from overseer.store.runs import RunStore
from overseer.tui.app import ReviewApp
from overseer.tui.state import ReviewSession
from overseer.types import Sample


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def judged(tmp_path: Path, n: int = 9) -> tuple[Path, Path, str]:
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "prompt": f"q {i}", "response": f"answer number {i}",
                                        "label": "misaligned" if i % 3 == 0 else "aligned"}) + "\n"
                            for i in range(n)), encoding="utf-8")
    ws = tmp_path / "ws"
    code, text = cli("judge", str(data), "--label-field", "label", "--backend", "scripted:flip=0.5", "--json",
                     "-w", str(ws), "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, text
    return data, ws, json.loads(text[text.index("{"):])["run_id"]


def test_eval_and_runs_show_say_synthetic_for_scripted_verdicts(tmp_path: Path) -> None:
    data, ws, run_id = judged(tmp_path)
    code, text = cli("eval", str(data), "--label-field", "label", "-w", str(ws))
    assert code == 0, text
    assert "synthetic: 9 of the verdicts evaluated here are from the scripted test backend" in " ".join(text.split())
    code, text = cli("eval", str(data), "--label-field", "label", "--json", "-w", str(ws))
    assert code == 0 and json.loads(text[text.index("{"):])["scripted_verdicts"] == 9
    code, text = cli("runs", "show", run_id, "-w", str(ws))
    assert code == 0 and "synthetic: 9 of this run's verdicts are" in " ".join(text.split()), text


def test_an_accepted_version_records_its_backends_and_prompts_history_says_synthetic(tmp_path: Path) -> None:
    examples = [Example(Sample(id=f"p{i:03d}", prompt=f"question {i}", response=f"answer number {i}, in words",
                               metadata={"trap": "finance"} if i % 4 == 1 else {}),
                        "misaligned" if i % 3 == 0 else "aligned") for i in range(200)]  # type: ignore[arg-type]
    pool = split_pool(examples)
    told = Script.of((e.sample, e.label) for e in pool.all())
    opt = Optimizer(spec=load_spec(None), store=RunStore(tmp_path / "runs.sqlite"), prompts=PromptStore(tmp_path),
                    judge_provider=ScriptedProvider("rules", labels=told.labels, metadata=told.metadata),
                    reflection_provider=ScriptedProvider("reflect", reflect="fix_finance"), pool=pool,
                    delimiter_key=b"k", gate=Gate(delta=0.02), minibatch=12)
    [outcome] = asyncio.run(opt.run(1))
    opt.store.close()
    assert outcome.status == "accepted", outcome.reason
    v2 = PromptStore(tmp_path).get(2)
    assert v2.judge_backend == "scripted@scripted-rules"
    assert v2.reflection_backend == "scripted@scripted-reflect=fix_finance"
    assert v2.synthetic and not PromptStore(tmp_path).get(1).synthetic
    code, text = cli("prompts", "history", "-w", str(tmp_path))
    assert code == 0 and "synthetic: 1 of these candidates were judged or proposed" in " ".join(text.split()), text
    code, text = cli("prompts", "history", "--json", "-w", str(tmp_path))
    assert [r["synthetic"] for r in json.loads(text)] == [True]
    code, text = cli("prompts", "show", "2", "-w", str(tmp_path))
    assert "judge_backend: scripted@scripted-rules" in text


async def test_the_review_apps_stats_say_synthetic(tmp_path: Path) -> None:
    _, ws, run_id = await asyncio.to_thread(judged, tmp_path)
    store = RunStore(ws / "runs.sqlite")
    session = ReviewSession(store, load_settings(workspace=ws), run_id=run_id, with_memory=False)
    assert session.stats()["scripted_verdicts"] == 9 and store.scripted_verdicts() == 9
    app = ReviewApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape", "t")
        await app.workers.wait_for_complete()  # the run half of the stats comes from a worker (issue 14.4)
        await pilot.pause()
        summary = str(app.screen.query_one("#stats-summary").render())
    store.close()
    assert "synthetic: 9 of the judge verdicts in scope are" in " ".join(summary.split())
