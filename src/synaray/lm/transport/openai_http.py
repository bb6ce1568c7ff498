"""Direct OpenAI-compatible chat completions over aiohttp, one connection pool per loop.

`post_chat` sends a request dict (litellm's argument names, as `LanguageModel` builds it)
to `{api_base}/chat/completions` and returns the decoded JSON body; `reply_from_body` turns
that into a `ChatReply`. `open_chat` is its sending part (post, error mapping, the response
to read), shared with the streamed calls of `openai_stream`. What litellm would do with the
same request is kept:

- the body is the request's OpenAI parameters, `model` without its `openai/` prefix and
  `extra_body` merged in at the top level (where llama.cpp reads `grammar`);
- the key is sent as `Authorization: Bearer ...` (the request's, else `OPENAI_API_KEY`),
  `extra_headers` are added; `HTTP(S)_PROXY` / `NO_PROXY` are honoured (read once per URL);
- `timeout` bounds the whole request; failures are raised as the `synaray.errors` class
  `map_litellm_errors` gives for the same HTTP status (401/403/404/other 4xx: `LMInputError`,
  408: `LMTimeout`, 429: `LMRateLimited` with `Retry-After`, 5xx and connection errors:
  `LMServerError`, a 400/413 body saying the prompt exceeds the context:
  `LMContextLengthError`), with the provider's own message;
- cost uses litellm's price table for the model (loaded once per model name); a server on
  this machine (a loopback `api_base`) costs nothing, and litellm is then never imported.

Every request of a process and event loop goes through one `aiohttp.ClientSession` (HTTP/1.1
keep-alive, no connection limit of its own: `LanguageModel`'s semaphore, the engine's call
slots and the rate limiter bound what is in flight). The session is closed when the event
loop shuts down (`asyncio.run`, via the loop's async-generator hook); a Ray worker's loop
lives as long as the worker, and so does its pool (closed at exit by `close_open_sessions`).

Example:
    >>> body = request_body({"model": "openai/smollm2", "messages": [], "timeout": 5.0,
    ...                      "extra_body": {"grammar": "root ::= \\"a\\""}})
    >>> sorted(body), body["model"]
    (['grammar', 'messages', 'model'], 'smollm2')
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import urllib.parse
import urllib.request
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from synaray.errors import LMError, LMOutputError, LMServerError, LMTimeout
from synaray.lm.errors import error_class_for_status, retry_after_seconds
from synaray.lm.transport.choice import CONTROL_KEYS
from synaray.lm.transport.reply import ChatReply

__all__ = ["DEFAULT_API_BASE", "client_timeout", "clip", "endpoint", "headers_for",
           "json_body", "open_chat", "post_chat", "proxy_for", "reply_from_body",
           "request_body", "shared_session", "status_error"]

DEFAULT_API_BASE = "https://api.openai.com/v1"
_MAX_MESSAGE_CHARS = 500
# The class names litellm (the OpenAI SDK) gives these statuses, so messages read alike.
_STATUS_NAMES = {400: "BadRequestError", 401: "AuthenticationError",
                 403: "PermissionDeniedError", 404: "NotFoundError", 408: "Timeout",
                 409: "ConflictError", 422: "UnprocessableEntityError",
                 429: "RateLimitError", 500: "InternalServerError",
                 503: "ServiceUnavailableError"}

_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any]] = (
    weakref.WeakKeyDictionary())
_ATEXIT_REGISTERED = False


async def shared_session() -> Any:
    """This event loop's `aiohttp.ClientSession` (created on first use)."""
    loop = asyncio.get_running_loop()
    entry = _SESSIONS.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    import aiohttp

    # trust_env=False: aiohttp would look the proxy up in a worker thread for every request
    # (a third of the client's CPU); `_proxy_for` reads the same variables once per URL.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None), trust_env=False)
    closer = _close_at_loop_shutdown(loop, session)
    await closer.__anext__()  # registers it with the loop: `shutdown_asyncgens` closes it
    _SESSIONS[loop] = (session, closer)  # the dict holds the generator alive
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        atexit.register(close_open_sessions)
        _ATEXIT_REGISTERED = True
    return session


def close_open_sessions(timeout_s: float = 2.0) -> None:
    """Close the pools of loops that never shut down (a Ray actor's loop thread), at exit,
    so that aiohttp does not print "Unclosed client session" when the process ends."""
    for loop, (session, _) in list(_SESSIONS.items()):
        if session.closed or loop.is_closed():
            continue
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout_s)
            else:
                loop.run_until_complete(session.close())
        except Exception:  # best effort at exit: a loop that cannot run is left as is
            continue


async def _close_at_loop_shutdown(loop: asyncio.AbstractEventLoop,
                                  session: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        entry = _SESSIONS.get(loop)
        if entry is not None and entry[0] is session:
            del _SESSIONS[loop]
        await session.close()


def endpoint(api_base: str | None) -> str:
    """`api_base` without a trailing slash; OpenAI's own API when it is None."""
    return (api_base or DEFAULT_API_BASE).rstrip("/")


def request_body(request: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body litellm would send for `request` to an OpenAI-compatible server."""
    body = {k: v for k, v in request.items() if k not in CONTROL_KEYS}
    model = str(request["model"])
    body["model"] = model.split("/", 1)[1] if model.startswith("openai/") else model
    extra = request.get("extra_body")
    if extra:
        body.update(extra)
    return body


def headers_for(request: Mapping[str, Any]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    key = request.get("api_key") or os.environ.get("OPENAI_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    headers.update(request.get("extra_headers") or {})
    return headers


@functools.lru_cache(maxsize=64)
def proxy_for(url: str) -> str | None:
    """The proxy `HTTP(S)_PROXY` / `NO_PROXY` give for `url` (read once per URL)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


@functools.lru_cache(maxsize=64)
def client_timeout(seconds: float | None) -> Any:
    import aiohttp

    return aiohttp.ClientTimeout(total=seconds)


async def post_chat(request: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Send `request`; the decoded answer, or an `LMError` subclass (`model` names it)."""
    async with open_chat(request, model, request_body(request)) as response:
        return await json_body(response, model)


def status_error(model: str, status: int, raw: bytes, headers: Mapping[str, Any]) -> LMError:
    kind = error_class_for_status(status, raw.decode(errors="replace"))
    name = _STATUS_NAMES.get(status) or ("InternalServerError" if status >= 500 else "APIError")
    return kind(f"{model}: {name} (HTTP {status}): {clip(_provider_message(raw))}",
                status_code=status, retry_after_s=retry_after_seconds(headers))


ErrorFor = Callable[[str, int, bytes, Mapping[str, Any]], Exception]


@contextlib.asynccontextmanager
async def open_chat(request: Mapping[str, Any], model: str, body: Mapping[str, Any],
                    error_for: ErrorFor = status_error) -> AsyncIterator[Any]:
    """POST `body` to the request's `{api_base}/chat/completions` through this loop's pool
    and yield the `aiohttp.ClientResponse` (status below 400) for the block to read.

    The one sending path of `post_chat` and `openai_stream.stream_chat`. An HTTP error
    status is raised as `error_for(model, status, body read, headers)` (`status_error`
    by default); a timeout, while sending or while the block reads, as `LMTimeout`; a
    connection error as `LMServerError`. The key goes in the headers only, never in a
    message. The connection returns to the keep-alive pool when the block ends with the
    body read to its end (else aiohttp closes it).
    """
    import aiohttp

    url = f"{endpoint(request.get('api_base'))}/chat/completions"
    timeout = request.get("timeout")
    session = await shared_session()
    try:
        async with session.post(url, data=json.dumps(body).encode(),
                                headers=headers_for(request), timeout=client_timeout(timeout),
                                proxy=proxy_for(url)) as response:
            if response.status >= 400:
                raise error_for(model, response.status, await response.read(),
                                response.headers)
            yield response
    except TimeoutError as exc:  # aiohttp's timeouts are asyncio.TimeoutError subclasses
        raise LMTimeout(f"{model}: Timeout: no answer within {timeout} s from {url}",
                        status_code=408) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise LMServerError(f"{model}: APIConnectionError: {type(exc).__name__}: "
                            f"{clip(str(exc))}") from exc


async def json_body(response: Any, model: str) -> Any:
    """The body of `response` decoded as JSON (an `LMServerError` when it is not JSON)."""
    raw = await response.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise LMServerError(f"{model}: APIError: the server answered HTTP {response.status} "
                            f"with a body that is not JSON: "
                            f"{clip(raw.decode(errors='replace'))}",
                            status_code=response.status) from exc


def _provider_message(raw: bytes) -> str:
    """The `error.message` of an OpenAI-style error body (vLLM: `message`), else the text."""
    text = raw.decode(errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text or "(empty body)"
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if payload.get("message"):
            return str(payload["message"])
    return text


def clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def reply_from_body(body: Any, model: str, request: Mapping[str, Any]) -> ChatReply:
    """The text, tokens and cost of a chat-completion body (`LMOutputError` without one).

    `"estimated": true` in its usage (set by `openai_stream` when the server sent no usage)
    marks the token counts as estimates (`ChatReply.usage_estimated`).
    """
    try:
        text = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LMOutputError(f"{model}: the response has no message: "
                            f"{type(exc).__name__}: {exc}") from exc
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cost = 0.0
    if (prompt or completion) and not _is_loopback(request.get("api_base")):
        per_prompt, per_completion = _unit_prices(str(request["model"]))
        cost = prompt * per_prompt + completion * per_completion
    return ChatReply(text=text if text is None else str(text), prompt_tokens=prompt,
                     completion_tokens=completion, cost=cost,
                     usage_estimated=usage.get("estimated") is True)


@functools.lru_cache(maxsize=256)
def _unit_prices(model: str) -> tuple[float, float]:
    """USD per prompt token and per completion token in litellm's price table (0 if absent)."""
    from synaray.lm._litellm import import_litellm

    litellm = import_litellm()
    try:
        info = litellm.get_model_info(model=model)
    except Exception:  # litellm raises for a model it has no entry for
        return 0.0, 0.0
    return (float(info.get("input_cost_per_token") or 0.0),
            float(info.get("output_cost_per_token") or 0.0))


def _is_loopback(api_base: str | None) -> bool:
    host = urllib.parse.urlparse(api_base).hostname if api_base else None
    return host in ("localhost", "::1", "0.0.0.0") or bool(host and host.startswith("127."))
