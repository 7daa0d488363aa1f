"""Run the real `overseer` CLI in-process (as tests/cli/cli_helpers.py, under a name unique to this folder)."""

from __future__ import annotations

import contextlib
import io

from overseer.cli.main import run_app


def cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()
