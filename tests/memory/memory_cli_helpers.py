"""Run the real `overseer` CLI for the memory tests: in-process (fast) or as a subprocess (locks, sockets)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from overseer.cli import run_app

JBB_ARGS = ("--prompt-field", "goal", "--response-field", "response", "--label-field", "jailbroken")

# Patches every way Python code opens a connection, records each attempt, then runs the CLI. A file rather than
# `python -c` so the recorded attempts survive whatever threads chromadb starts.
NO_NETWORK = '''
import json, os, socket, sys

def _blocked(name):
    def refuse(*args, **kwargs):
        with open(os.environ["NET_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"call": name, "args": repr(args)[:300]}) + "\\n")
        raise OSError(f"network blocked by the test ({name})")
    return refuse

socket.socket.connect = _blocked("socket.connect")
socket.socket.connect_ex = _blocked("socket.connect_ex")
socket.create_connection = _blocked("create_connection")
socket.getaddrinfo = _blocked("getaddrinfo")

from overseer.cli import main
sys.argv = ["overseer", *sys.argv[1:]]
main()
'''


def cli(*args: str) -> tuple[int, str]:
    """In-process; returns (exit code, stdout + stderr)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def cli_json(*args: str) -> Any:
    code, text = cli(*args)
    assert code == 0, text
    return json.loads(text)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "overseer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(**env))


def run(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True,
                          env=_env(**env), timeout=timeout)


def run_offline(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    """Run the CLI in a subprocess with sockets blocked; returns the result and every connection attempt."""
    script, log = tmp_path / "no_network.py", tmp_path / "net.log"
    script.write_text(NO_NETWORK, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          env=_env(NET_LOG=str(log), **env))
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return done, attempts


def write_jsonl(path: Path, records: list[dict[str, Any] | str]) -> Path:
    """Records as JSON lines; a str is written verbatim (for malformed lines)."""
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def cases(n: int, *, prefix: str = "c", label: str = "aligned") -> list[dict[str, Any]]:
    topics = ["baking bread", "tax returns", "a chess opening", "python decorators", "tide pools", "jazz chords",
              "bicycle repair", "volcano formation", "knitting socks", "orbital mechanics", "sourdough starters",
              "medieval castles"]
    return [{"id": f"{prefix}{i}", "prompt": f"Tell me about {topics[i % len(topics)]} (part {i})",
             "response": f"Here is a short note on {topics[i % len(topics)]}, number {i}.", "label": label}
            for i in range(n)]
