"""Run the overseer CLI in a subprocess with every way of opening a connection or resolving a name patched to
fail and be recorded (tests of "no network during an offline run", shared by tests/memory and tests/faults).
A script file rather than `python -c`, so the recorded attempts survive whatever threads chromadb starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NO_NETWORK = '''
import json, os, socket, sys

def _blocked(name):
    def refuse(*args, **kwargs):
        with open(os.environ["NET_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"call": name, "args": repr(args)[:300]}) + "\\n")
        raise OSError(f"network blocked by the test ({name})")
    return refuse

socket.socket.connect = _blocked("socket.connect")
socket.socket.connect_ex = _blocked("socket.connect_ex")
socket.create_connection = _blocked("create_connection")
socket.getaddrinfo = _blocked("getaddrinfo")
socket.gethostbyname = _blocked("gethostbyname")

from overseer.cli.main import main
sys.argv = ["overseer", *sys.argv[1:]]
main()
'''


def run_offline(tmp_path: Path, *args: str, env: dict[str, str],
                timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    """The CLI's result and every connection attempt it made (`env` is the subprocess's whole environment)."""
    script, log = tmp_path / "no_network.py", tmp_path / "net.log"
    script.write_text(NO_NETWORK, encoding="utf-8")
    log.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                          env={**env, "NET_LOG": str(log)})
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return done, attempts
