"""Pieces shared by the fake HTTP servers of the provider tests (tests/providers/conftest.py) and the fault suite
(tests/faults/fault_helpers.py): writing one JSON reply, and a fixture body that stops every server it started."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=Closable)


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: str, headers: Mapping[str, str]) -> None:
    """Answer with `payload` as the JSON body; a client that already gave up (timeout test) is not an error."""
    data = payload.encode("utf-8")
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass


@contextmanager
def servers(factory: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """`with servers(FakeServer) as start:` — `start(...)` builds a server; all of them close on exit."""
    started: list[S] = []

    def start(*args: Any) -> S:
        server = factory(*args)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.close()
