"""How long the CLI takes to start: median wall time of `overseer --help` and `overseer runs list` (on an empty
temporary workspace) beside `python -c pass`, all measured in the same run so machine load affects each alike.
On a shared machine the wall time mostly measures waiting for a core, so the CPU time (user + system) each
command used is printed too.

    python bench/cli_startup.py [N]
Prints one line: help_s=… runs_list_s=… python_s=… (medians of N runs each, default 11), then the same as
*_cpu_s."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_seconds(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """(median wall time, median CPU time) of `runs` runs of argv."""
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_before = time.perf_counter(), children_cpu()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall.append(time.perf_counter() - started)
        cpu.append(children_cpu() - cpu_before)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    python = sys.executable
    # `python -m overseer` rather than the console script: the same interpreter, whatever venv is active.
    overseer = [python, "-m", "overseer"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OVERSEER_HOME": str(Path(tmp) / "ws"), "COLUMNS": "120"}
        (help_s, help_cpu), (list_s, list_cpu), (python_s, python_cpu) = (
            median_seconds(argv, runs, env)
            for argv in ([*overseer, "--help"], [*overseer, "runs", "list"], [python, "-c", "pass"]))
    print(f"help_s={help_s:.3f} runs_list_s={list_s:.3f} python_s={python_s:.3f} "
          f"help_cpu_s={help_cpu:.3f} runs_list_cpu_s={list_cpu:.3f} python_cpu_s={python_cpu:.3f} runs={runs}")


if __name__ == "__main__":
    main()
