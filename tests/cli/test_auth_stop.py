"""A 401 stops the whole run at once, names the environment variable, and leaves it resumable."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_helpers import cli, write_samples


class Rejecting(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rejecting_server():  # type: ignore[no-untyped-def]
    Rejecting.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Rejecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_401_stops_the_run_with_the_variable_to_fix(tmp_path: Path, rejecting_server: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    data = write_samples(tmp_path / "in.jsonl", 50)
    code, text = cli("judge", str(data), "--backend", "openai", "--model", "m", "--base-url", rejecting_server,
                     "--concurrency", "1", "-w", str(tmp_path / "ws"))
    assert code == 3
    assert "OPENAI_API_KEY" in text
    assert len(Rejecting.requests) == 1  # no retry, and no other sample tried after the 401
    with sqlite3.connect(tmp_path / "ws" / "runs.sqlite") as db:
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
