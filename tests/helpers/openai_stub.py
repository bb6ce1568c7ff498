"""A loopback OpenAI-compatible HTTP server for tests: scripted answers, counted requests.

It speaks just enough of the OpenAI API for litellm's `openai/...` provider:
`POST /v1/chat/completions`, `POST /v1/embeddings` and `GET /v1/models`. Each request to a
POST endpoint takes the next scripted `StubReply` (or asks `handler`, or uses `default`);
every request body is kept in `requests`, so a test can count what reached the server, and
each request's `Authorization` header in `authorizations` (same order), so a test can check
which key every request carried. With `api_key`, a request with another key gets HTTP 401
(as a provider rejecting the key does).

A chat request with `"stream": true` is answered with server-sent events: the content in
pieces of `chunk_chars` characters, `chunk_delay_s` apart, then a usage event when the
request asks for it (`stream_options.include_usage`) and `stream_usage` is on, then
`[DONE]`. `stream_sent` records, per streamed request, the pieces written before the
stream ended or the client went away (`stream_closed_early` counts the latter). With
`streaming=False` the stub refuses streamed requests with HTTP 400, as some servers do.

Example:
    >>> with OpenAIStub() as stub:
    ...     stub.script(StubReply(status=429, headers={"Retry-After": "0"}), StubReply("hi"))
    ...     # point a model at it: LanguageModel("openai/test", api_base=stub.api_base,
    ...     #                                   api_key="x", cache=False)
    ...     stub.api_base.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIStub", "StubReply", "stub_embedding"]


@dataclass
class StubReply:
    """One scripted answer.

    Args:
        content: the assistant message text (chat) returned with status 200.
        status: HTTP status code; anything but 200 returns an OpenAI-style error body.
        headers: extra response headers (for example `{"Retry-After": "1"}`).
        delay_s: seconds to wait before answering (to provoke client timeouts).
        prompt_tokens: usage reported in the answer.
        completion_tokens: usage reported in the answer.
        body: a full JSON body to send instead of the generated one.
        chunk_chars: characters per event when the request is streamed.
        chunk_delay_s: seconds between two events of a streamed answer.
        interrupted: a streamed answer stops halfway with `[DONE]` and no `finish_reason`
            (as llama-cpp-python's server does when another request waits).
    """

    content: str | None = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    prompt_tokens: int = 11
    completion_tokens: int = 7
    body: dict | None = None
    chunk_chars: int = 4
    chunk_delay_s: float = 0.0
    interrupted: bool = False


def stub_embedding(text: str, dim: int = 8) -> list[float]:
    """A deterministic fake embedding of `text` (same text, same vector)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255.0 for b in digest[:dim]]


class OpenAIStub:
    """A threaded loopback server answering with scripted `StubReply`s.

    Args:
        replies: replies to serve in order, one per POST request.
        default: the reply when the script is empty (by default a 200 with "ok").
        handler: optional `handler(path, body) -> StubReply | None` asked before the script.
        latency_s: delay added to every POST answer.
        model_id: the id listed by `GET /v1/models`.
        api_key: when set, only requests with `Authorization: Bearer <api_key>` are
            answered; others get 401 (and are recorded, not passed to the script).
    """

    def __init__(self, replies: list[StubReply] | None = None, *,
                 default: StubReply | None = None,
                 handler: Callable[[str, dict], StubReply | None] | None = None,
                 latency_s: float = 0.0, model_id: str = "test",
                 api_key: str | None = None) -> None:
        self._script: deque[StubReply] = deque(replies or [])
        self.default = default or StubReply()
        self.handler = handler
        self.latency_s = latency_s
        self.model_id = model_id
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.authorizations: list[str | None] = []
        self.streaming = True
        self.stream_usage = True
        self.stream_sent: list[int] = []
        self.stream_closed_early = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> OpenAIStub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="openai-stub")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "start the stub first"
        return self._server.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *replies: StubReply) -> None:
        """Queue replies, served one per POST request after those already queued."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.paths.clear()
            self.authorizations.clear()
            self.stream_sent.clear()
            self.stream_closed_early = 0

    def keys_seen(self) -> dict[str | None, int]:
        """Requests per key sent (the `Authorization: Bearer` value; None without one)."""
        with self._lock:
            keys = [a.removeprefix("Bearer ") if a else None for a in self.authorizations]
        return {k: keys.count(k) for k in dict.fromkeys(keys)}

    def _record(self, path: str, body: dict, authorization: str | None) -> None:
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            self.authorizations.append(authorization)

    def _next_reply(self, path: str, body: dict, authorization: str | None = None
                    ) -> StubReply:
        self._record(path, body, authorization)
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return StubReply(status=401)
        if self.handler is not None:
            reply = self.handler(path, body)
            if reply is not None:
                return reply
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _ok_body(self, path: str, body: dict, reply: StubReply) -> dict:
        usage = {"prompt_tokens": reply.prompt_tokens,
                 "completion_tokens": reply.completion_tokens,
                 "total_tokens": reply.prompt_tokens + reply.completion_tokens}
        if path.endswith("/embeddings"):
            texts = body.get("input") or []
            texts = [texts] if isinstance(texts, str) else texts
            data = [{"object": "embedding", "index": i, "embedding": stub_embedding(str(t))}
                    for i, t in enumerate(texts)]
            usage["completion_tokens"] = 0
            return {"object": "list", "data": data, "model": body.get("model", self.model_id),
                    "usage": usage}
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", self.model_id),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": usage,
        }


def _error_body(status: int, message: str | None = None) -> dict:
    kind = {429: "rate_limit_error", 400: "invalid_request_error",
            401: "authentication_error", 404: "not_found_error"}.get(status, "server_error")
    return {"error": {"message": message or f"stub error {status}", "type": kind,
                      "code": str(status)}}


def _write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


def _write_stream(handler: BaseHTTPRequestHandler, stub: OpenAIStub, body: dict,
                  reply: StubReply) -> None:
    """The answer as server-sent events, stopped when the client goes away."""
    content = reply.content or ""
    size = max(1, reply.chunk_chars)
    pieces = [content[i:i + size] for i in range(0, len(content), size)]
    base = {"id": "chatcmpl-stream", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": body.get("model", stub.model_id)}
    events = [{**base, "choices": [{"index": 0, "delta": {"content": piece},
                                    "finish_reason": None}]} for piece in pieces]
    if reply.interrupted:
        events = events[:len(events) // 2]
    else:
        events.append({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": "stop"}]})
    wants_usage = (body.get("stream_options") or {}).get("include_usage")
    if not reply.interrupted and stub.stream_usage and wants_usage:
        events.append({**base, "choices": [], "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}})
    sent = 0
    try:  # chunked transfer encoding: the connection stays open for the next request
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for event in events:
            _write_chunk(handler, f"data: {json.dumps(event)}\n\n".encode())
            sent += 1
            if reply.chunk_delay_s:
                time.sleep(reply.chunk_delay_s)
        _write_chunk(handler, b"data: [DONE]\n\n")
        _write_chunk(handler, b"")
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
        with stub._lock:
            stub.stream_closed_early += 1
    with stub._lock:
        stub.stream_sent.append(sent)


class _ClosingHandler(BaseHTTPRequestHandler):
    """Quiet about clients that close a connection early (a stream closed on a loop)."""

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True


def _make_handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(_ClosingHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # silence the console
            return

        def _send(self, status: int, payload: dict, headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout test)
                pass

        def do_GET(self) -> None:
            models = {"object": "list", "data": [{"id": stub.model_id, "object": "model"}]}
            self._send(200, models, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw or b"{}")
            streamed = bool(body.get("stream")) and self.path.endswith("/chat/completions")
            if streamed and not stub.streaming:  # refused before the script is consumed
                stub._record(self.path, body, self.headers.get("Authorization"))
                self._send(400, _error_body(400, "stream: streaming is not supported"), {})
                return
            reply = stub._next_reply(self.path, body, self.headers.get("Authorization"))
            delay = reply.delay_s + stub.latency_s
            if delay:
                time.sleep(delay)
            if streamed and reply.status == 200 and reply.body is None:
                _write_stream(self, stub, body, reply)
                return
            if reply.body is not None:
                payload = reply.body
            elif reply.status == 200:
                payload = stub._ok_body(self.path, body, reply)
            else:
                payload = _error_body(reply.status)
            self._send(reply.status, payload, reply.headers)

    return Handler
