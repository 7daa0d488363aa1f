"""Run the real `overseer` CLI, in-process (fast) or as a subprocess (for signals and crashes)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from overseer.cli.main import run_app


def cli(*args: str) -> tuple[int, str]:
    """In-process; returns (exit code, stdout + stderr). Same code path as the console script."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def spawn(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "overseer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)  # type: ignore[call-overload]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def write_samples(path: Path, n: int, *, label_every: int = 3) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"s{i:05d}", "prompt": f"question {i}", "response": f"answer number {i}",
                                "label": "misaligned" if i % label_every == 0 else "aligned"}) + "\n")
    return path


def output_ids(path: Path) -> list[str]:
    return [json.loads(line)["sample_id"] for line in path.read_text(encoding="utf-8").splitlines() if line]
