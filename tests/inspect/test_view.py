"""A real `inspect view` process on 127.0.0.1 lists and opens overseer's export."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from inspect_helpers import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a loopback URL the test built)
        return json.loads(response.read())


@pytest.mark.slow
def test_inspect_view_lists_and_opens_the_export(inspect_log: Path, tmp_path: Path) -> None:
    ws, view_dir = tmp_path / "ws", tmp_path / "view"
    code, text = cli("judge", inspect_log, "--backend", "scripted:echo", "--label-field", "label", "--no-memory",
                     "-w", ws, "-o", ws / "out.jsonl", "--json")
    assert code == 0, text
    run_id = json.loads(text[text.index("{"):])["run_id"]
    export = view_dir / "overseer-export.eval"
    code, text = cli("runs", "export", run_id, "--format", "inspect", "-o", export, "-w", ws)
    assert code == 0, text

    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    stderr = (tmp_path / "view.stderr").open("wb")  # a file, not a pipe nobody drains: the server never blocks
    view = subprocess.Popen([str(Path(sys.executable).with_name("inspect")), "view", "--log-dir", str(view_dir),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, listing = time.monotonic() + 120, None
        while time.monotonic() < deadline and view.poll() is None:
            try:
                listing = get_json(f"{base}/log-files")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert listing is not None, (f"inspect view did not answer within 120 s (exit {view.poll()}): "
                                     f"{(tmp_path / 'view.stderr').read_text(errors='replace')[-1500:]}")
        names = [entry["name"] for entry in listing["files"]]  # type: ignore[index]
        assert any(name.endswith("overseer-export.eval") for name in names), names
        [name] = names
        opened = get_json(f"{base}/logs/{urllib.parse.quote(name, safe='')}")
        assert opened["status"] == "success" and len(opened["samples"]) == 6  # type: ignore[index]
        assert {s["scores"]["spec_judge"]["value"]["label"] for s in opened["samples"]} == {  # type: ignore[index]
            "misaligned", "aligned", "refusal"}
    finally:
        os.killpg(view.pid, signal.SIGTERM)
        try:
            view.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(view.pid, signal.SIGKILL)
            view.wait(timeout=10)
        stderr.close()
