"""WordLlama calls logging.basicConfig(level=INFO) when imported; left alone, every HTTP request the SDKs log at
INFO ("HTTP Request: POST …") lands in the user's terminal. Loading it through overseer must leave logging as it
was. A subprocess, because the import happens once per interpreter."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging
from overseer.embeddings import embed
embed(["an edge case"])
root = logging.getLogger()
print(root.level, len(root.handlers))
"""


def test_loading_wordllama_leaves_the_root_logger_alone() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == [str(30), "0"]  # WARNING, no handlers: Python's defaults
