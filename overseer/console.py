"""The CLI's two consoles, shared by every command module (stdout for results, stderr for progress and errors).

Piped output (scripts, CI logs) gets wide tables instead of rich's 80-column default, which truncates run ids."""

from __future__ import annotations

import os
import sys

from rich.console import Console

_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
out = Console(soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=_WIDTH)
