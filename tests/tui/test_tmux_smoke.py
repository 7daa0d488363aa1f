"""Runs tests/tui/tmux_smoke.sh: the review app in a real terminal (tmux) at 140x45 and 80x24. Skipped when tmux
is missing, except under CI=true, where a missing tmux is a failure (CI must install it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("tmux_smoke.sh")


def test_the_review_app_in_a_real_terminal() -> None:
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed: CI must install it (apt-get install -y tmux)")
        pytest.skip("tmux is not installed")
    done = subprocess.run(["bash", str(SCRIPT), sys.executable], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS at ") == 2
