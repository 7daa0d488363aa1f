"""The light commands start fast: importing the CLI and running `--help`, `runs list|show`, `spec clauses`,
`prompts list` and `memory stats` loads none of the heavy packages (langgraph alone took ~1 s to import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("langgraph", "chromadb", "textual", "sklearn", "matplotlib", "anthropic", "openai", "llama_cpp", "wordllama")

# Runs in a fresh interpreter: the test process itself has imported everything by now.
PROBE = """
import contextlib, io, json, sys
from overseer.cli.main import run_app
codes = {}
for args in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes[" ".join(args)] = run_app(args)
print(json.dumps({"codes": codes, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])}))
"""


def overseer_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_light_commands_import_no_heavy_package(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"id": f"s{i}", "prompt": f"question {i}", "response": f"answer {i}",
                                           "label": "aligned"}) + "\n" for i in range(3)), encoding="utf-8")
    # Something for each light command to read: a run, and a memory (these two commands do load the heavy parts).
    overseer_cli("judge", str(samples), "--backend", "scripted:echo", "--label-field", "label", "--no-memory",
                 "-w", ws)
    overseer_cli("seed", str(samples), "--reviewed", "-w", ws)
    run_id = json.loads(overseer_cli("runs", "list", "--json", "-w", ws))[0]["id"]

    light = [["--help"], ["runs", "list", "-w", ws], ["runs", "show", run_id, "-w", ws],
             ["spec", "clauses", "emergent_misalignment"], ["prompts", "list", "-w", ws],
             ["memory", "stats", "-w", ws]]
    probe = subprocess.run([sys.executable, "-c", PROBE, json.dumps(light), *HEAVY], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert set(found["codes"].values()) == {0}, found["codes"]
    assert found["heavy"] == [], found["heavy"]


def test_the_probe_sees_a_heavy_import() -> None:
    """The probe above is not vacuous: a command that does need langgraph shows up in its list."""
    probe = subprocess.run([sys.executable, "-c", PROBE.replace("run_app(args)", "__import__(args[0]) and 0"),
                            json.dumps([["langgraph.graph"]]), *HEAVY], capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    assert "langgraph" in json.loads(probe.stdout)["heavy"]


def test_audit_help_lists_every_perturbation() -> None:
    from overseer.audit import PERTURBATIONS
    from overseer.cli.audit import PERTURBATION_NAMES

    assert ", ".join(PERTURBATIONS) == PERTURBATION_NAMES
