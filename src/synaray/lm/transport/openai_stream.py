"""Streamed chat completions over the direct HTTP client, closed early when the answer loops.

`send_chat(request, model, stream=True)` sends the request with `"stream": true` and
`"stream_options": {"include_usage": true}` and reads the server-sent events as they come:
the text of each `delta` goes to a `LoopGuard` (`synaray.lm.parsing`). When the answer's
tail turns into a loop (one unit repeated, see `looping_unit`), the connection is closed at
once, so that the server stops generating (llama.cpp, vLLM and OpenAI end a generation
whose client went away), and the `ChatReply` carries the repeated unit in `loop_unit`:
`LanguageModel` turns it into the same `LMOutputError` the check of a finished answer gives.

Usage is the server's when it sends it (the last event, with `include_usage`); otherwise
(a stream closed before its end, a server that sends none, such as llama-cpp-python) the
completion tokens are the text pieces received (servers send about one token per event)
and the prompt tokens the 4-characters-per-token estimate: that usage carries
`"estimated": true`, so the `ChatReply` has `usage_estimated` (only then). The request is
sent through `openai_http.open_chat`, as a plain one: same pool, error classes, messages.

Servers that refuse streaming (HTTP 415 or 501, or 400/422 with an error message that names
`stream`, to a streamed request that a plain request passes) are remembered per endpoint:
the request is sent again without streaming, and so are all later ones to that endpoint, in
this process. Other errors are raised as they are (a bad request costs one request, not
two). A server that ignores `stream` and answers with one JSON body is read as such. A
stream that ends without a `finish_reason` was cut by the server (llama-cpp-python's
`interrupt_requests`, on by default, ends a stream with `[DONE]` when another request
waits): the request is sent again without streaming and the endpoint is remembered too.
A stream that ends before its first event is a request the server failed on at once
(llama-cpp-python answers a prompt longer than its context window with an empty 200
stream): it is sent again without streaming, which returns the server's error (an
`LMContextLengthError` there), and the endpoint is not remembered.

Example:
    >>> events = [b'data: {"choices": [{"delta": {"content": "Hi"}}]}\\n', b'\\n',
    ...           b'data: [DONE]\\n']
    >>> [event_payload(line) for line in events]
    [{'choices': [{'delta': {'content': 'Hi'}}]}, None, 'DONE']
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from synaray.errors import LMContextLengthError, LMError, LMInputError, LMServerError
from synaray.lm.base import estimate_tokens
from synaray.lm.errors import CONTEXT_TOO_LONG
from synaray.lm.parsing import LoopGuard
from synaray.lm.transport import openai_http
from synaray.lm.transport.reply import ChatReply

__all__ = ["STREAM_REFUSED_STATUSES", "event_payload", "send_chat", "stream_chat",
           "streaming_refused"]

#: Statuses with which a server may refuse `stream` / `stream_options` it does not support
#: (400 and 422 only with a message that names `stream`).
STREAM_REFUSED_STATUSES = frozenset({400, 415, 422, 501})
_NO_STREAM_ENDPOINTS: set[str] = set()
#: Waits before the plain resend of a stream that failed before its first event, while the
#: resend meets a dropped connection: llama-cpp-python's server refuses connections for a
#: moment after a stream of its failed (measured: a resend at once is reset, one 50 ms later
#: answered; longer waits for a loaded machine). Connection errors only; the call's own
#: retry policy comes after these.
_RESEND_WAITS_S = (0.0, 0.1, 0.5, 2.0)


class _StreamRefused(Exception):
    """The server refused a streamed request, or ended its stream before the answer did."""


class _StreamFailed(_StreamRefused):
    """The stream ended before its first event: the server failed on the request itself."""


def streaming_refused(api_base: str | None) -> bool:
    """True when this process learned that the endpoint refuses streamed requests."""
    return openai_http.endpoint(api_base) in _NO_STREAM_ENDPOINTS


async def send_chat(request: Mapping[str, Any], model: str, stream: bool) -> ChatReply:
    """One request through the direct client: streamed with the loop check when `stream`
    (and the endpoint has not refused streaming), else one JSON answer."""
    if stream and not streaming_refused(request.get("api_base")):
        try:
            return await stream_chat(request, model)
        except _StreamFailed:
            return openai_http.reply_from_body(await _resend_plainly(request, model), model,
                                               request)
        except _StreamRefused:
            # Resent plainly: if this fails too, the request itself was refused (its error
            # is raised) and the endpoint is not marked.
            reply = openai_http.reply_from_body(
                await openai_http.post_chat(request, model), model, request)
            _NO_STREAM_ENDPOINTS.add(openai_http.endpoint(request.get("api_base")))
            return reply
    body = await openai_http.post_chat(request, model)
    return openai_http.reply_from_body(body, model, request)


async def _resend_plainly(request: Mapping[str, Any], model: str) -> Any:
    """The plain answer (or error) to a request whose stream failed before its first event,
    sent again after each of `_RESEND_WAITS_S` while the connection is dropped."""
    for wait_s in _RESEND_WAITS_S[:-1]:
        await asyncio.sleep(wait_s)
        try:
            return await openai_http.post_chat(request, model)
        except LMServerError as exc:
            if exc.status_code is not None:  # the server answered: its error stands
                raise
    await asyncio.sleep(_RESEND_WAITS_S[-1])
    return await openai_http.post_chat(request, model)


def event_payload(line: bytes) -> dict | str | None:
    """The JSON of one `data:` line of an event stream, "DONE" for `[DONE]`, else None."""
    if not line.startswith(b"data:"):
        return None  # blank separators, comments (": ping"), `event:` / `id:` fields
    data = line[5:].strip()
    if not data:
        return None
    if data == b"[DONE]":
        return "DONE"
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


async def stream_chat(request: Mapping[str, Any], model: str) -> ChatReply:
    """Send `request` streamed; stop reading (and close the connection) when it loops."""
    body = openai_http.request_body(request)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    async with openai_http.open_chat(request, model, body,
                                     error_for=_status_error) as response:
        if not response.content_type.startswith("text/event-stream"):
            return openai_http.reply_from_body(await openai_http.json_body(response, model),
                                               model, request)
        return await _read_events(response, model, request)


def _status_error(model: str, status: int, raw: bytes, headers: Mapping[str, Any]) -> Exception:
    """The plain request's error for `status`, or `_StreamRefused` when the server refuses
    streaming (the request is then sent again plainly)."""
    error = openai_http.status_error(model, status, raw, headers)
    if _refuses_streaming(status, raw.decode(errors="replace")):
        return _StreamRefused(str(error))
    return error


def _refuses_streaming(status: int, message: str) -> bool:
    if status not in STREAM_REFUSED_STATUSES:
        return False
    return status in (415, 501) or "stream" in message.lower()


async def _read_events(response: Any, model: str, request: Mapping[str, Any]) -> ChatReply:
    guard = LoopGuard()
    pieces: list[str] = []
    usage: dict | None = None
    loop_unit: str | None = None
    finished = False
    events = 0
    async for line in response.content:
        payload = event_payload(line)
        if payload is None:
            continue
        if payload == "DONE":
            # read to the end of the body (the chunked terminator) so that the connection
            # goes back to the keep-alive pool instead of being closed unread
            await response.content.read()
            break
        assert isinstance(payload, dict)
        events += 1
        if isinstance(payload.get("usage"), dict):
            usage = payload["usage"]
        if payload.get("error"):
            raise _stream_error(model, payload["error"])
        choices = payload.get("choices")
        if not choices:
            continue
        finished = finished or bool(choices[0].get("finish_reason"))
        delta = choices[0].get("delta") or {}
        piece = delta.get("content")
        if piece:
            pieces.append(piece)
            loop_unit = guard.feed(piece)
            if loop_unit is not None:
                response.close()  # the server sees the client go and stops generating
                break
    if not events:
        # not back to the pool: the server drops the connection of a failed stream
        response.close()
        raise _StreamFailed(f"{model}: the stream ended before its first event")
    if loop_unit is None and not finished:
        raise _StreamRefused(f"{model}: the stream ended without a finish_reason")
    if usage is None:
        prompt = estimate_tokens([str(m.get("content") or "")
                                  for m in request.get("messages") or []])
        usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces), "estimated": True}
    reply = openai_http.reply_from_body(
        {"choices": [{"message": {"content": "".join(pieces)}}], "usage": usage}, model,
        request)
    return dataclasses.replace(reply, loop_unit=loop_unit)


def _stream_error(model: str, error: Any) -> LMError:
    """An error event inside a stream (vLLM, OpenAI: `{"error": {...}}` after the headers)."""
    message = error.get("message") if isinstance(error, dict) else error
    code = error.get("code") if isinstance(error, dict) else None
    status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) \
        else None
    kind = LMInputError if status is not None and 400 <= status < 500 and status not in (
        408, 429) else LMServerError
    if CONTEXT_TOO_LONG.search(str(message)) or (
            isinstance(error, dict) and CONTEXT_TOO_LONG.search(str(error.get("code")))):
        kind = LMContextLengthError
    return kind(f"{model}: APIError (in the stream): {openai_http.clip(str(message))}",
                status_code=status)
