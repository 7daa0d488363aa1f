"""The background improvement round (issue 13.8), as the app runs it: a real `overseer improve` process started
from the review session's settings; its outcome line read from the process's output, a failure named with its
reason and exit code; a round started by an earlier session is waited for by pid."""

from __future__ import annotations

import sys
from pathlib import Path

from tui_helpers import settings

from overseer.tui import improvements


def test_the_command_carries_the_sessions_backend_flags(tmp_path: Path) -> None:
    conf = settings(tmp_path, backend="scripted:rules", reflection_backend="scripted:reflect=fix_finance")
    argv = improvements.improve_argv(conf, spec="/x/spec.md", seed=7)
    assert argv[:4] == [sys.executable, "-m", "overseer", "improve"] and "--json" in argv
    pairs = dict(zip(argv[4::1], argv[5::1], strict=False))
    assert pairs["-w"] == str(conf.workspace) and pairs["--backend"] == "scripted:rules"
    assert pairs["--reflection-backend"] == "scripted:reflect=fix_finance" and pairs["--spec"] == "/x/spec.md"
    assert pairs["--seed"] == "7" and "--model" not in argv  # flags left unset stay unset


def test_a_round_that_cannot_run_is_reported_as_failed_with_its_reason(tmp_path: Path) -> None:
    conf = settings(tmp_path / "ws", backend="scripted:rules")
    round_ = improvements.start(conf, 1, spec=None, seed=0)  # an empty workspace: nothing labelled to learn from
    code = improvements.wait(round_, stop=lambda: False, poll_s=0.05)
    assert code is not None and code != 0
    status, message = improvements.outcome(round_, code)
    assert status == "failed" and "labelled samples" in message and str(round_.err_path) in message


def test_waiting_can_stop_and_an_earlier_sessions_round_is_waited_for_by_pid(tmp_path: Path) -> None:
    import subprocess

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    earlier = improvements.Round(3, tmp_path / "request-3.json", pid=sleeper.pid)
    assert improvements.wait(earlier, stop=lambda: True) is None  # the app quits: stop waiting, the round goes on
    reaper = __import__("threading").Thread(target=sleeper.wait)  # as init would reap an orphan
    reaper.start()
    assert improvements.alive(sleeper.pid)
    code = improvements.wait(earlier, stop=lambda: False, poll_s=0.05)
    assert sleeper.poll() is not None and code == 1  # waited for its end; it wrote no outcomes
    reaper.join()
    (tmp_path / "request-3.json").write_text('[{"status": "rejected", "reason": "no gain"}]')
    assert improvements.outcome(earlier, 0) == ("done", "improvement round rejected: no gain")
