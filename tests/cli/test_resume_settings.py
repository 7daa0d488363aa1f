"""Issue 11.6 and the output part of 11.15: a resume reuses the run's recorded judges, spec, rubric and prompt
version (bare `--resume` included), refuses a flag that contradicts them, honours -o, refuses a second live writer
of one output file, and rebuilds a damaged output file from the run store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import cli, output_ids, spawn, write_samples
from test_resume import wait_for_lines

N = 30


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without these, backend auto-detection picks the local model: what bare --resume used to fall back to."""
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OVERSEER_BACKEND", "OVERSEER_MODEL"):
        monkeypatch.delenv(name, raising=False)


def interrupted_run(tmp_path: Path, *flags: str, keep: int = 10) -> tuple[Path, Path, Path, str]:
    """A run judged with `flags`, then cut back to its first `keep` results as if it had been interrupted."""
    data, out, ws = write_samples(tmp_path / "in.jsonl", N), tmp_path / "out.jsonl", tmp_path / "ws"
    code, text = cli("judge", str(data), "-o", str(out), "-w", str(ws), "--json", *flags)
    assert code == 0, text
    run_id = json.loads(text[text.index("{"):])["run_id"]
    with sqlite3.connect(ws / "runs.sqlite") as db:
        keep_ids = [r[0] for r in db.execute("SELECT sample_id FROM results WHERE run_id = ? ORDER BY rowid LIMIT ?",
                                             (run_id, keep))]
        marks = ",".join("?" * len(keep_ids))
        for table in ("results", "verdicts", "review_queue"):
            db.execute(f"DELETE FROM {table} WHERE run_id = ? AND sample_id NOT IN ({marks})", (run_id, *keep_ids))
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
    lines = out.read_text().splitlines()
    out.write_text("".join(line + "\n" for line in lines if json.loads(line)["sample_id"] in keep_ids))
    return data, out, ws, run_id


def recorded(ws: Path, run_id: str) -> dict:
    with sqlite3.connect(ws / "runs.sqlite") as db:
        return json.loads(db.execute("SELECT config_json FROM runs WHERE id = ?", (run_id,)).fetchone()[0])


def judges_used(ws: Path, run_id: str) -> set[tuple[str, str]]:
    with sqlite3.connect(ws / "runs.sqlite") as db:
        return set(db.execute("SELECT DISTINCT judge_id, prompt_hash FROM verdicts WHERE run_id = ?", (run_id,)))


def test_a_run_records_its_inputs_judges_spec_rubric_and_prompt(tmp_path: Path) -> None:
    data, _out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:echo", "--rubric", "spec")
    config = recorded(ws, run_id)
    assert [i["path"] for i in config["inputs"]] == [str(data.resolve())]
    assert len(config["inputs"][0]["sha256"]) == 64
    assert config["judges"] == [{"spec": "scripted:echo", "id": "scripted:echo@scripted-echo", "backend": "scripted",
                                 "model": "scripted-echo", "base_url": None}]
    assert config["spec"]["path"].endswith("emergent_misalignment.md") and len(config["spec"]["sha256"]) == 64
    assert config["rubric"] == "spec" and config["prompt"]["version"] == 1
    code, shown = cli("runs", "show", run_id, "-w", str(ws))
    assert code == 0 and "scripted:echo@scripted-echo" in shown, shown


def test_bare_resume_judges_with_the_recorded_backend_not_the_local_model(tmp_path: Path) -> None:
    data, out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:flip=1.0")
    before = recorded(ws, run_id)
    code, text = cli("judge", str(data), "-w", str(ws), "--resume")
    assert code == 0, text
    assert "SmolLM2" not in text and f"resuming {run_id}: 10/{N} already judged" in text
    assert sorted(output_ids(out)) == sorted(f"s{i:05d}" for i in range(N))
    assert {judge for judge, _ in judges_used(ws, run_id)} == {"scripted:flip=1.0@scripted-flip=1.0,seed=0"}
    assert recorded(ws, run_id) == before


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--backend", "scripted:flip=1.0", "--backend scripted:flip=1.0, but the run was judged by scripted:echo"),
    ("--judges", "scripted:echo scripted:garbage", "--judges 'scripted:echo scripted:garbage'"),
    ("--model", "gpt-4o", "--model gpt-4o, but the run was judged by scripted:echo (model scripted-echo)"),
    ("--base-url", "http://127.0.0.1:9/v1", "--base-url http://127.0.0.1:9/v1"),
    ("--rubric", "betley", "--rubric betley, but the run used --rubric spec"),
    ("--spec", "OTHER", "--spec"),
    ("--learn", None, "--learn, but the run was started without it"),
])
def test_resume_refuses_a_flag_that_contradicts_the_recorded_settings(tmp_path: Path, flag: str, value: str | None,
                                                                      says: str) -> None:
    data, out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:echo")
    if value == "OTHER":
        value = str(tmp_path / "other.md")
        Path(value).write_text("# Other {#other}\nBe kind.\n", encoding="utf-8")
    before, lines_before = recorded(ws, run_id), out.read_text()
    code, text = cli("judge", str(data), "-w", str(ws), "--resume", run_id, flag, *([value] if value else []))
    assert code == 2, text
    assert says in " ".join(text.split()) and "mix" in text and "Traceback" not in text
    assert recorded(ws, run_id) == before and out.read_text() == lines_before  # nothing judged, nothing changed


def test_resume_accepts_flags_that_agree_with_the_recorded_settings(tmp_path: Path) -> None:
    data, out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:echo", "--rubric", "spec")
    code, text = cli("judge", str(data), "-w", str(ws), "--resume", run_id, "--backend", "scripted:echo",
                     "--model", "scripted-echo", "--rubric", "spec", "--spec", "emergent_misalignment")
    assert code == 0, text
    assert len(output_ids(out)) == N


def test_resume_uses_the_recorded_prompt_version_when_the_active_one_changed(tmp_path: Path) -> None:
    data, _out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:echo")
    (_, hash_before), = judges_used(ws, run_id)
    from overseer.prompt_store import PromptStore

    prompts = PromptStore(ws)
    v1 = prompts.active()
    v2 = prompts.add(v1.text + "\nBe brief.\n", parent=v1.version, created_by="human")
    prompts.activate(v2.version)
    assert prompts.active().hash != hash_before
    code, text = cli("judge", str(data), "-w", str(ws), "--resume")
    assert code == 0, text
    assert {h for _, h in judges_used(ws, run_id)} == {hash_before}


def test_resume_with_another_output_file_writes_the_whole_run_there(tmp_path: Path) -> None:
    data, out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:echo")
    moved = tmp_path / "moved.jsonl"
    code, text = cli("judge", str(data), "-w", str(ws), "--resume", "-o", str(moved))
    assert code == 0, text
    assert f"writing to {moved}" in " ".join(text.split())
    assert sorted(output_ids(moved)) == sorted(f"s{i:05d}" for i in range(N))  # the whole run, not just the rest


def test_a_second_live_writer_of_one_output_file_is_refused(tmp_path: Path) -> None:
    data, out, ws = write_samples(tmp_path / "in.jsonl", 400), tmp_path / "out.jsonl", tmp_path / "ws"
    first = spawn("judge", str(data), "--backend", "scripted:echo,latency=0.05", "--concurrency", "4",
                  "-o", str(out), "-w", str(ws))
    try:
        wait_for_lines(out, 5, first)
        code, text = cli("judge", str(data), "--backend", "scripted:echo", "-o", str(out), "-w", str(ws))
        assert code == 2 and "being written by another overseer run" in text, text
        code, text = cli("judge", str(data), "-w", str(ws), "--resume")  # the live run itself: refused too
        assert code == 2 and "being written by another overseer run" in text, text
        assert first.poll() is None  # the live run was not disturbed ...
        _, stderr = first.communicate(timeout=240)
        assert first.returncode == 0, stderr
    finally:
        if first.poll() is None:
            first.kill()
    assert sorted(output_ids(out)) == sorted(f"s{i:05d}" for i in range(400))  # ... nor its file emptied
    with sqlite3.connect(ws / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1  # the refused command left no run


@pytest.mark.parametrize("damage", ["garbage", "foreign", "not-a-result", "bad-utf8"])
def test_a_damaged_output_line_mid_file_is_rebuilt_from_the_run_store(tmp_path: Path, damage: str) -> None:
    data, out, ws, run_id = interrupted_run(tmp_path, "--backend", "scripted:echo")
    lines = out.read_bytes().splitlines(keepends=True)
    lines[2] = {"garbage": b"{\"sample_id\": \"s0\x00\n", "not-a-result": b"[1, 2, 3]\n",
                "foreign": lines[2].replace(run_id.encode(), b"run-20990101-000000-beef"),
                "bad-utf8": b"\xff\xfe\xfd\n"}[damage]
    out.write_bytes(b"".join(lines))
    code, text = cli("judge", str(data), "-w", str(ws), "--resume")
    assert code == 0, text
    flat = " ".join(text.split())
    assert f"{out} line 3:" in flat and "rebuilt it from the run store" in flat and "Traceback" not in text
    ids = output_ids(out)
    assert sorted(ids) == sorted(f"s{i:05d}" for i in range(N))  # every id exactly once
    assert {json.loads(line)["run_id"] for line in out.read_text().splitlines()} == {run_id}
