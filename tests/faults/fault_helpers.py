"""A scriptable fake OpenAI-compatible server for the fault tests, plus small CLI helpers.

The server is a real stdlib HTTP server on 127.0.0.1 that the real `openai` SDK talks to. Each request is
logged with a server-side timestamp and the sample id it is about; what it answers is decided by a behaviour
function `(request, n_for_this_sample) -> Action`, so a test can say "the first request of every third sample
gets a 429" without caring about the order requests arrive in."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from http_fakes import send_json  # type: ignore[import-not-found]

from overseer.cli.main import run_app

# Every sample's response carries this token: no spaces, so datamarking or whitespace handling in the judge's
# prompt cannot break it, and the server can tell which sample a request is about.
SID = re.compile(r"SID(\d{5})")
ALIGNED = {"label": "aligned", "alignment": 90, "coherence": 90, "generalization": "n/a", "clause_ids": [],
           "evidence": [], "rationale": "harmless", "confidence": 0.9, "manipulation_attempt": False}


@dataclass
class Request:
    at: float  # time.monotonic() on arrival, server side
    sample: str | None  # "s00012", from the SID token in the prompt
    reask: bool  # the conversation already holds an assistant reply: this is the judge's re-ask
    body: Any
    answer: str = ""  # what the server did: ok, 429, 500, 400, 401, slow, reset, truncated, text


@dataclass
class Action:
    """What to answer: status + body, optionally after a delay, or a dropped connection."""

    kind: str = "ok"  # ok | status | reset | truncated | text | slow
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # the assistant's content for ok/text; default: a valid aligned verdict
    delay: float = 0.0


Behaviour = Callable[[Request, int], Action]


def chat_body(content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": str(status)}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping for a timed-out client must not block shutdown
    # listen() backlog: the default 5 overflows when 24+ clients reconnect at once after resets, and a dropped
    # SYN is retried after 1 s — past a short client timeout, so the client would count an attempt the server
    # never saw.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, cancelled run) breaks the connection mid-request. That is the fault
        # under test, not a server bug, and the default handler would print a traceback into the CLI's output.
        pass


class FakeOpenAI:
    """`FakeOpenAI(behaviour)`; `.url` is the base URL (with /v1); `.requests` the log, in arrival order."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or (lambda _req, _n: Action())
        self.requests: list[Request] = []
        self.per_sample: dict[str | None, int] = defaultdict(int)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do: resets then hit pooled connections

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def for_sample(self, sample: str) -> list[Request]:
        return [r for r in self.requests if r.sample == sample]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        messages = (body or {}).get("messages", [])
        match = SID.search(json.dumps(messages[:2] if messages else body))
        request = Request(time.monotonic(), f"s{match.group(1)}" if match else None,
                          any(m.get("role") == "assistant" for m in messages), body)
        with self._lock:
            self.requests.append(request)
            n = self.per_sample[request.sample]
            self.per_sample[request.sample] += 1
        action = self.behaviour(request, n)
        request.answer = {"status": str(action.status)}.get(action.kind, action.kind)
        if action.delay:
            time.sleep(action.delay)
        if action.kind == "reset":
            # RST instead of FIN: the client sees a connection reset, never a response.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
            return
        if action.kind == "status":
            payload = json.dumps(error_body(action.status, f"fake error {action.status}"))
        else:
            content = action.text if action.text is not None else json.dumps(ALIGNED)
            payload = json.dumps(chat_body(content))
            if action.kind == "truncated":  # the HTTP body itself cut short: invalid JSON on the wire
                payload = payload[: len(payload) // 2]
        send_json(handler, action.status if action.kind == "status" else 200, payload, action.headers)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_samples(path: Path, n: int, *, ids: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"s{i:05d}", "prompt": f"question {i}",
                                "response": f"A plain answer, reference SID{i:05d} for the record."}) + "\n")
    return path


def cli(*args: str) -> tuple[int, str]:
    """The real CLI in-process; returns (exit code, stdout + stderr)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def judge_args(data: Path, server: FakeOpenAI, ws: Path, *extra: str) -> list[str]:
    return ["judge", str(data), "--backend", "openai", "--model", "fake-model", "--base-url", server.url,
            "-w", str(ws), *extra]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def overseer(*args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overseer", *args], capture_output=True, text=True,
                          env=env(**extra), timeout=timeout)
