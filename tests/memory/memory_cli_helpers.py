"""Run the real `overseer` CLI for the memory tests: in-process (fast) or as a subprocess (locks, sockets)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import offline

from overseer.cli.main import run_app

JBB_ARGS = ("--prompt-field", "goal", "--response-field", "response", "--label-field", "jailbroken")



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
    return offline.run_offline(tmp_path, *args, env=_env(**env), timeout=300)


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
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
