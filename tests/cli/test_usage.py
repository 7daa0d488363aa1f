"""Usage errors, as a user makes them at a real shell: one line on stderr naming the problem, exit 2, no traceback.

typer 0.29 bundles its own click and raises that one's exceptions; the CLI used to catch the separate `click`
package's, so each of these printed a 40-line traceback. Run as subprocesses: the console script's path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import overseer

CASES = {
    "bare": ([], "Usage: overseer"),
    "runs show without RUN": (["runs", "show"], "Missing argument 'RUN'"),
    "unknown option": (["runs", "list", "--bogus"], "No such option: --bogus"),
    "not an integer": (["judge", "in.jsonl", "--concurrency", "abc"], "Invalid value for '--concurrency'"),
    "unknown command": (["nosuch"], "No such command 'nosuch'"),
    "judge without INPUT": (["judge"], "Missing argument 'INPUT'"),
    "typo'd subcommand": (["runs", "lst"], "Did you mean 'list'?"),
    "bare group": (["memory"], "Usage: overseer memory"),
}


def overseer_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "OVERSEER_HOME": str(cwd / "ws")}
    return subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("case", CASES)
def test_a_usage_error_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    args, expected = CASES[case]
    done = overseer_cli(*args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert expected in done.stdout + done.stderr
    if args and args != ["memory"]:  # a bare command prints its help; every other mistake is one line
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("error: ") and "--help" in done.stderr


def test_help_and_version_exit_0(tmp_path: Path) -> None:
    helped = overseer_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "Usage: overseer" in helped.stdout and "Traceback" not in helped.stderr
    version = overseer_cli("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"overseer {overseer.__version__}")


def test_help_names_arguments_in_capitals_and_shows_no_bool_metavar(tmp_path: Path) -> None:
    judge = overseer_cli("judge", "--help", cwd=tmp_path).stdout
    assert "Usage: overseer judge [OPTIONS] INPUT" in judge and "{input}" not in judge
    diff = overseer_cli("prompts", "diff", "--help", cwd=tmp_path).stdout  # an explicit metavar is kept
    assert "Usage: overseer prompts diff [OPTIONS] VERSION VERSION" in diff, diff
    for command in (["--help"], ["judge", "--help"], ["memory", "list", "--help"]):
        assert "<bool>" not in overseer_cli(*command, cwd=tmp_path).stdout, command


def test_an_overseer_error_is_one_line_too(tmp_path: Path) -> None:
    done = overseer_cli("judge", "missing.jsonl", "--backend", "scripted:echo", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["error: missing.jsonl: input file not found"], done.stderr
