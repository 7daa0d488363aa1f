"""A fake of both providers' batch endpoints on 127.0.0.1, for the real `anthropic` and `openai` SDKs.

Anthropic Message Batches: POST/GET /v1/messages/batches, GET /v1/messages/batches/ID, GET .../ID/results
(JSONL), POST .../ID/cancel. OpenAI: POST /v1/files (multipart, purpose=batch), GET /v1/files/ID/content,
POST/GET /v1/batches, GET /v1/batches/ID, POST /v1/batches/ID/cancel.

A batch ends on its `polls_to_end`-th retrieve. What each item gets is decided, when the batch ends, by
`fate(item) -> "ok" | "expire" | "transient" | "invalid" | "garbage"`; "ok" answers with `reply(item)` (a valid
aligned verdict by default). Every custom_id ever submitted is counted in `submitted`, so a test can prove that
nothing was sent twice."""

from __future__ import annotations

import email.parser
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from http_fakes import send_json  # type: ignore[import-not-found]

SID = re.compile(r"SID(\d{5})")
ALIGNED = {"label": "aligned", "alignment": 90, "coherence": 90, "generalization": "n/a", "clause_ids": [],
           "evidence": [], "rationale": "harmless", "confidence": 0.9, "manipulation_attempt": False}
USAGE_IN, USAGE_OUT = 1000, 100  # tokens every reply reports, for the cost checks


@dataclass
class Item:
    custom_id: str
    body: dict[str, Any]  # Anthropic `params` or OpenAI `body`
    sample: str | None  # "s00012", from the SID token in the prompt
    reask: bool  # the conversation holds an assistant turn: the judge's re-ask


@dataclass
class FakeBatch:
    id: str
    api: str  # anthropic | openai
    items: list[Item]
    created_at: float
    metadata: dict[str, str] = field(default_factory=dict)
    input_file_id: str | None = None
    polls: int = 0
    status: str = "in_progress"
    results: dict[str, tuple[str, Any]] = field(default_factory=dict)  # custom_id → (fate, reply)
    output_file_id: str | None = None
    error_file_id: str | None = None


class FakeBatchAPI:
    def __init__(self, *, polls_to_end: int = 1, fate: Callable[[Item], str] | None = None,
                 reply: Callable[[Item], str] | None = None) -> None:
        self.polls_to_end = polls_to_end
        self.fate = fate or (lambda _item: "ok")
        self.reply = reply or (lambda _item: json.dumps(ALIGNED))
        self.batches: dict[str, FakeBatch] = {}
        self.files: dict[str, bytes] = {}
        self.submitted: Counter[str] = Counter()
        self.interactive: list[dict[str, Any]] = []  # bodies of POST /v1/messages and /v1/chat/completions
        # Cleared by a test to hold every create() reply after the batch exists: the client is then killed in
        # the window between the provider creating a batch and the run store recording its id.
        self.create_gate = threading.Event()
        self.create_gate.set()
        self.drop_creates = 0  # this many create() calls are dropped unanswered, before any batch exists
        self.refuse_input = False  # OpenAI: the next batch fails validation as a whole (status "failed")
        self.calls: list[tuple[str, str]] = []  # (method, path)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- routing ----------------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        path = h.path.split("?")[0]
        if method == "POST" and path in ("/v1/messages/batches", "/v1/batches") and self.drop_creates > 0:
            self.drop_creates -= 1
            h.close_connection = True
            h.connection.close()
            return
        with self._lock:
            self.calls.append((method, path))
            status, payload = self._route(method, path, raw, h.headers.get("Content-Type", ""))
        if method == "POST" and path in ("/v1/messages/batches", "/v1/batches"):
            self.create_gate.wait()
        if isinstance(payload, bytes):
            h.send_response(status)
            h.send_header("Content-Type", "application/binary")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        send_json(h, status, json.dumps(payload), {})

    def _route(self, method: str, path: str, raw: bytes, content_type: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if method == "POST" and path in ("/v1/messages", "/v1/chat/completions"):  # interactive calls
            body = json.loads(raw)
            self.interactive.append(body)
            item = Item("interactive", body, None, False)
            text = self.reply(item)
            return 200, anthropic_message(item, text) if path == "/v1/messages" else chat_completion(text)
        if parts[:3] == ["v1", "messages", "batches"]:
            rest = parts[3:]
            if method == "POST" and not rest:
                return 200, self._anthropic(self._create("anthropic", [
                    (r["custom_id"], r["params"]) for r in json.loads(raw)["requests"]]))
            if method == "GET" and not rest:
                return 200, self._page([self._anthropic(b) for b in self._newest("anthropic")])
            batch = self.batches.get(rest[0])
            if batch is None:
                return 404, {"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}}
            if rest[1:] == ["results"]:
                return 200, self._anthropic_results(batch)
            if rest[1:] == ["cancel"]:
                self._cancel(batch)
                return 200, self._anthropic(batch)
            self._poll(batch)
            return 200, self._anthropic(batch)
        if parts[:2] == ["v1", "files"]:
            if method == "POST":
                return 200, self._upload(raw, content_type)
            return 200, self.files[parts[2]]
        if parts[:2] == ["v1", "batches"]:
            rest = parts[2:]
            if method == "POST" and not rest:
                body = json.loads(raw)
                lines = [json.loads(x) for x in self.files[body["input_file_id"]].decode().splitlines() if x]
                batch = self._create("openai", [(x["custom_id"], x["body"]) for x in lines])
                batch.metadata, batch.input_file_id = body.get("metadata") or {}, body["input_file_id"]
                return 200, self._openai(batch)
            if method == "GET" and not rest:
                return 200, {"object": "list", **self._page([self._openai(b) for b in self._newest("openai")])}
            batch = self.batches[rest[0]]
            if rest[1:] == ["cancel"]:
                self._cancel(batch)
            else:
                self._poll(batch)
            return 200, self._openai(batch)
        return 404, {"error": {"message": f"no route {method} {path}"}}

    # --- batch life -------------------------------------------------------------------------------------------
    def _create(self, api: str, requests: list[tuple[str, dict[str, Any]]]) -> FakeBatch:
        prefix = "msgbatch_" if api == "anthropic" else "batch_"
        items = []
        for cid, body in requests:
            self.submitted[cid] += 1
            text = json.dumps(body.get("messages", [])[:2])
            match = SID.search(text)
            items.append(Item(cid, body, f"s{match.group(1)}" if match else None,
                              any(m.get("role") == "assistant" for m in body.get("messages", []))))
        batch = FakeBatch(f"{prefix}{next(self._ids):04d}", api, items, time.time())
        self.batches[batch.id] = batch
        return batch

    def _newest(self, api: str) -> list[FakeBatch]:
        return sorted((b for b in self.batches.values() if b.api == api), key=lambda b: b.id, reverse=True)

    def _poll(self, batch: FakeBatch) -> None:
        batch.polls += 1
        if batch.status == "in_progress" and batch.polls >= self.polls_to_end:
            self._end(batch, "ended")

    def _cancel(self, batch: FakeBatch) -> None:
        if batch.status == "in_progress":
            self._end(batch, "canceled")

    def _end(self, batch: FakeBatch, how: str) -> None:
        if batch.api == "openai" and self.refuse_input:
            self.refuse_input = False
            batch.status = "failed"
            return
        for item in batch.items:
            fate = "canceled" if how == "canceled" else self.fate(item)
            batch.results[item.custom_id] = (fate, self.reply(item) if fate == "ok" else None)
        batch.status = how
        if batch.api == "openai":
            ok = [self._openai_line(i, batch) for i in batch.items
                  if batch.results[i.custom_id][0] in ("ok", "garbage")]
            bad = [self._openai_line(i, batch) for i in batch.items
                   if batch.results[i.custom_id][0] in ("transient", "invalid")]
            if ok:
                batch.output_file_id = self._store_file("\n".join(json.dumps(x) for x in ok) + "\n")
            if bad:
                batch.error_file_id = self._store_file("\n".join(json.dumps(x) for x in bad) + "\n")

    def _store_file(self, text: str) -> str:
        file_id = f"file-{next(self._ids):04d}"
        self.files[file_id] = text.encode()
        return file_id

    def _upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        message = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        parts: list[Any] = message.get_payload()  # type: ignore[assignment]  # multipart: a list of parts
        fields: dict[str, bytes] = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                                    for part in parts}
        assert fields["purpose"] == b"batch", fields.get("purpose")
        file_id = self._store_file(fields["file"].decode())
        return {"id": file_id, "object": "file", "bytes": len(fields["file"]), "created_at": int(time.time()),
                "filename": "input.jsonl", "purpose": "batch", "status": "processed"}

    # --- wire shapes ------------------------------------------------------------------------------------------
    @staticmethod
    def _page(data: list[dict[str, Any]]) -> dict[str, Any]:
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def _anthropic(self, b: FakeBatch) -> dict[str, Any]:
        counts = Counter({"ok": "succeeded", "transient": "errored", "invalid": "errored", "garbage": "succeeded",
                          "expire": "expired", "canceled": "canceled"}[fate] for fate, _ in b.results.values())
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b.created_at))
        ended = b.status != "in_progress"
        return {"id": b.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else len(b.items), "succeeded": counts["succeeded"],
                                   "errored": counts["errored"], "canceled": counts["canceled"],
                                   "expired": counts["expired"]},
                "created_at": created, "expires_at": created, "ended_at": created if ended else None,
                "archived_at": None, "cancel_initiated_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{b.id}/results" if ended else None}

    def _anthropic_results(self, b: FakeBatch) -> bytes:
        lines = []
        for item in b.items:
            fate, reply = b.results[item.custom_id]
            if fate in ("ok", "garbage"):
                text = reply if fate == "ok" else "no verdict here"
                result: dict[str, Any] = {"type": "succeeded", "message": anthropic_message(item, text)}
            elif fate in ("transient", "invalid"):
                kind = "overloaded_error" if fate == "transient" else "invalid_request_error"
                result = {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": fate}}}
            else:
                result = {"type": "expired" if fate == "expire" else "canceled"}
            lines.append(json.dumps({"custom_id": item.custom_id, "result": result}))
        return ("\n".join(lines) + "\n").encode()

    def _openai(self, b: FakeBatch) -> dict[str, Any]:
        status = {"in_progress": "in_progress", "canceled": "cancelled", "failed": "failed"}.get(b.status, "completed")
        if b.status == "ended" and any(f == "expire" for f, _ in b.results.values()):
            status = "expired"
        done = sum(f in ("ok", "garbage") for f, _ in b.results.values())
        failed = sum(f in ("transient", "invalid") for f, _ in b.results.values())
        errors = ({"object": "list", "data": [{"code": "invalid_json_line", "message": "line 1 is not valid",
                                               "line": 1}]} if status == "failed" else None)
        return {"id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": errors,
                "input_file_id": b.input_file_id or "", "completion_window": "24h", "status": status,
                "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
                "created_at": int(b.created_at), "metadata": b.metadata,
                "request_counts": {"total": len(b.items), "completed": done, "failed": failed}}

    def _openai_line(self, item: Item, b: FakeBatch) -> dict[str, Any]:
        fate, reply = b.results[item.custom_id]
        if fate in ("ok", "garbage"):
            text = reply if fate == "ok" else "no verdict here"
            return {"id": f"r-{item.custom_id}", "custom_id": item.custom_id, "error": None,
                    "response": {"status_code": 200, "request_id": "req", "body": chat_completion(text)}}
        status = 500 if fate == "transient" else 400
        return {"id": f"r-{item.custom_id}", "custom_id": item.custom_id, "error": None,
                "response": {"status_code": status, "request_id": "req",
                             "body": {"error": {"message": fate, "type": "invalid_request_error"}}}}


def anthropic_message(item: Item, text: str) -> dict[str, Any]:
    """A verdict comes as the forced tool call when the request had tools; plain text otherwise (Betley)."""
    usage = {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT}
    if "tools" in item.body:
        try:
            content = [{"type": "tool_use", "id": "toolu_1", "name": "record_verdict", "input": json.loads(text)}]
        except ValueError:
            content = [{"type": "text", "text": text}]
    else:
        content = [{"type": "text", "text": text}]
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": item.body["model"],
            "content": content, "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}


def chat_completion(text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT}}


# --- running the CLI --------------------------------------------------------------------------------------------
def write_samples(path: Any, n: int) -> Any:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"s{i:05d}", "prompt": f"question {i}",
                                "response": f"A plain answer, reference SID{i:05d} for the record."}) + "\n")
    return path


def cli(*args: str) -> tuple[int, str]:
    """The real CLI in-process; returns (exit code, stdout + stderr)."""
    import contextlib
    import io

    from overseer.cli.main import run_app

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        code = run_app(list(args))
    return code, buffer.getvalue()


def backend_args(api: str, fake: FakeBatchAPI) -> list[str]:
    """The judge flags for `api` against the fake (keys and the Anthropic URL come from env())."""
    if api == "anthropic":
        return ["--backend", "anthropic", "--model", "claude-sonnet-4-6"]
    return ["--backend", "openai", "--model", "gpt-4o-mini", "--base-url", f"{fake.url}/v1"]


def env_for(fake: FakeBatchAPI) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "sk-ant-fake", "ANTHROPIC_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-fake"}
