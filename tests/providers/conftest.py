"""A real HTTP server on 127.0.0.1 that plays back scripted replies, so the provider tests drive the real
SDKs over a real socket (headers, status codes, timeouts) instead of mocking the SDK.

Replies are plain dicts with the fields of `Reply` (status, body, headers, delay): test modules cannot import
from a conftest reliably (several `conftest` modules share one name), so nothing here needs importing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from http_fakes import send_json, servers  # type: ignore[import-not-found]


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; str → sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (client-timeout tests)


@dataclass
class Seen:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    headers: dict[str, str]
    body: Any


ReplySpec = Reply | dict[str, Any]
Script = list[ReplySpec] | Callable[[Seen, int], ReplySpec]


class FakeServer:
    """Answers the n-th request with script[n] (the last reply repeats), or with script(seen, n)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True  # a handler still sleeping for a timed-out client must not block close
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        seen = Seen(time.monotonic(), handler.command, handler.path,
                    {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            index = len(self.requests)
            self.requests.append(seen)
        script = self.script
        reply = script(seen, index) if callable(script) else script[min(index, len(script) - 1)]
        if isinstance(reply, dict):
            reply = Reply(**reply)
        if reply.delay:
            time.sleep(reply.delay)
        send_json(handler, reply.status, reply.body if isinstance(reply.body, str) else json.dumps(reply.body),
                  reply.headers)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server() -> Iterator[Callable[[Script], FakeServer]]:
    """`fake_server([{"status": 429, "headers": {...}}, {"body": {...}}])` starts a server; all stop at teardown."""
    with servers(FakeServer) as start:
        yield start
