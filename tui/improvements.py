"""Improvement rounds the review app found due, run by a background `overseer improve` process (the app never
calls a model itself). Textual-agnostic: the app starts a round, waits for it on a worker thread, and shows the
outcome line this module reads from the process's output. A round outlives the app if the reviewer quits; the
next session finds its outcome in the log it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from overseer.config import Settings


def improve_argv(settings: Settings, *, spec: str | None, seed: int) -> list[str]:
    """`overseer improve` with the review session's backend flags (everything else it reads, like the session did,
    from the environment and the workspace)."""
    argv = [sys.executable, "-m", "overseer", "improve", "--json", "-w", str(settings.workspace), "--seed", str(seed)]
    for flag, value in (("--backend", settings.backend), ("--model", settings.model),
                        ("--base-url", settings.base_url), ("--reflection-backend", settings.reflection_backend),
                        ("--judges", settings.judges[0] if settings.judges else None), ("--spec", spec)):
        if value:
            argv += [flag, value]
    return argv


@dataclass
class Round:
    request_id: int
    log_path: Path  # stdout (the JSON outcomes); stderr goes to the same name with .err
    process: subprocess.Popen[bytes] | None = None  # None: started by an earlier session (only its pid is known)
    pid: int | None = None

    @property
    def err_path(self) -> Path:
        return self.log_path.with_suffix(".err")


def start(settings: Settings, request_id: int, *, spec: str | None, seed: int) -> Round:
    folder = settings.workspace / "improve"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"request-{request_id}.json"
    with log.open("wb") as out, log.with_suffix(".err").open("wb") as err:
        # A session of its own: ctrl-c in the review app's terminal does not kill the round.
        process = subprocess.Popen(improve_argv(settings, spec=spec, seed=seed), stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return Round(request_id, log, process, process.pid)


def wait(round_: Round, stop: Callable[[], bool], poll_s: float = 0.5) -> int | None:
    """Block (on a worker thread) until the round's process ends; its exit code, or None when `stop()` said to
    give up first (the app is quitting: the round goes on, and the next session reads its log)."""
    while not stop():
        if round_.process is not None:
            code = round_.process.poll()
            if code is not None:
                return code
        elif round_.pid is None or not alive(round_.pid):
            return 0 if round_.log_path.exists() and round_.log_path.stat().st_size else 1
        time.sleep(poll_s)
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def outcome(round_: Round, code: int) -> tuple[str, str]:
    """(status done | failed, one line for the reviewer) from the finished process's output."""
    try:
        outcomes = json.loads(round_.log_path.read_text(encoding="utf-8") or "null")
    except (OSError, json.JSONDecodeError):
        outcomes = None
    if code == 0 and isinstance(outcomes, list):
        if not outcomes:
            return "done", "improvement: no round ran"
        last = outcomes[-1]
        return "done", f"improvement round {last.get('status')}: {last.get('reason')}"
    try:
        lines = [line for line in round_.err_path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        lines = []
    why = lines[-1].strip() if lines else f"exit code {code}"
    return "failed", f"improvement round failed: {why} (log: {round_.err_path})"
