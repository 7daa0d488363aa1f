"""How long the CLI takes to start: median wall time of `overseer --help` and `overseer runs list` (on an empty
temporary workspace) beside `python -c pass`, all measured in the same run so machine load affects each alike.

    python bench/cli_startup.py [N]
Prints one line: help_s=… runs_list_s=… python_s=… (medians of N runs each, default 11)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_seconds(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    python = sys.executable
    # `python -m overseer` rather than the console script: the same interpreter, whatever venv is active.
    overseer = [python, "-m", "overseer"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OVERSEER_HOME": str(Path(tmp) / "ws"), "COLUMNS": "120"}
        help_s = median_seconds([*overseer, "--help"], runs, env)
        runs_list_s = median_seconds([*overseer, "runs", "list"], runs, env)
        python_s = median_seconds([python, "-c", "pass"], runs, env)
    print(f"help_s={help_s:.3f} runs_list_s={runs_list_s:.3f} python_s={python_s:.3f} runs={runs}")


if __name__ == "__main__":
    main()
