"""Translation of litellm's exceptions into synaray's, in one place.

Nothing else in synaray catches a litellm exception: calls to litellm run inside
`map_litellm_errors(model)`, which re-raises each one as the matching `synaray.errors` class
with `raise ... from exc`, and keeps the HTTP status and any `Retry-After` delay:

======================================================  ======================  =======
litellm (or asyncio) exception                          synaray error           retried
======================================================  ======================  =======
`litellm.Timeout`, status 408, `asyncio.TimeoutError`   `LMTimeout`             yes
`litellm.RateLimitError`, status 429                    `LMRateLimited`         yes
`APIConnectionError`, 5xx (`InternalServerError`...)    `LMServerError`         yes
`ContextWindowExceededError`, 400/413 whose message     `LMContextLengthError`  no
says the prompt is too long (`CONTEXT_TOO_LONG`)
any other 4xx (`BadRequestError`, auth, not found)      `LMInputError`          no
anything else                                           `LMError`               no
======================================================  ======================  =======

litellm keeps the provider's response headers on `exc.litellm_response_headers` (an
`httpx.Headers`); `exc.response.headers` is usually empty because litellm rebuilds the
response, so both are read, in that order.

The direct HTTP transport maps its statuses and error bodies with `error_class_for_status`,
so both transports raise the same class for the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from synaray.errors import (
    LMContextLengthError,
    LMError,
    LMInputError,
    LMRateLimited,
    LMServerError,
    LMTimeout,
)

__all__ = ["CONTEXT_TOO_LONG", "error_class_for_status", "map_litellm_errors",
           "retry_after_seconds", "translate_litellm_error"]

_MAX_MESSAGE_CHARS = 500


@contextlib.contextmanager
def map_litellm_errors(model: str) -> Iterator[None]:
    """Re-raise any exception of the block as a `synaray.errors.LMError` subclass.

    Args:
        model: the model name, put at the start of the message.

    Example:
        >>> with map_litellm_errors("openai/x"):
        ...     raise TimeoutError("slow")
        Traceback (most recent call last):
        ...
        synaray.errors.LMTimeout: openai/x: TimeoutError: slow
    """
    try:
        yield
    except LMError:
        raise
    except Exception as exc:
        raise translate_litellm_error(exc, model) from exc


def translate_litellm_error(exc: BaseException, model: str) -> LMError:
    """The `LMError` that stands for `exc` (not raised, so callers can chain it)."""
    status = _status_code(exc)
    detail = str(exc).strip() or type(exc).__name__
    kind = _classify(exc, status, detail)
    if not detail.startswith(type(exc).__name__) and not detail.startswith("litellm."):
        detail = f"{type(exc).__name__}: {detail}"
    if len(detail) > _MAX_MESSAGE_CHARS:
        detail = detail[:_MAX_MESSAGE_CHARS] + "..."
    return kind(f"{model}: {detail}", status_code=status,
                retry_after_s=retry_after_seconds(_headers_of(exc)))


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _classify(exc: BaseException, status: int | None, message: str) -> type[LMError]:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return LMTimeout
    for name, kind in _BY_CLASS_NAME:
        if any(cls.__name__ == name for cls in type(exc).__mro__):
            return kind
    if status is None:
        return LMError
    return error_class_for_status(status, message)


def error_class_for_status(status: int, message: str = "") -> type[LMError]:
    """The synaray error for an HTTP status and the provider's error text (also used by the
    direct HTTP transport, with the response body).

    Example:
        >>> error_class_for_status(429).__name__, error_class_for_status(401).__name__
        ('LMRateLimited', 'LMInputError')
        >>> error_class_for_status(400, "Requested tokens (5000) exceed context window of "
        ...                        "4096").__name__
        'LMContextLengthError'
    """
    if status == 408:
        return LMTimeout
    if status == 429:
        return LMRateLimited
    if status >= 500:
        return LMServerError
    if status in _CONTEXT_STATUSES and CONTEXT_TOO_LONG.search(message):
        return LMContextLengthError
    if 400 <= status < 500:
        return LMInputError
    return LMError


#: What providers say when the prompt does not fit the context window: OpenAI ("maximum
#: context length is N tokens", code `context_length_exceeded`), llama-cpp-python
#: ("Requested tokens (N) exceed context window of M"), llama.cpp's server ("exceeds the
#: available context size", `exceed_context_size_error`), vLLM ("longer than the maximum
#: model length"), Anthropic ("prompt is too long"), Gemini ("input token count ... exceeds
#: the maximum").
CONTEXT_TOO_LONG = re.compile(
    r"maximum context length|context[_ ]length[_ ]exceeded|exceed_context_size"
    r"|exceeds? (?:the )?(?:available |model'?s? )?context (?:window|size|length)"
    r"|longer than the maximum model length|prompt is too long"
    r"|input token count.{0,40}exceeds the maximum", re.IGNORECASE | re.DOTALL)
_CONTEXT_STATUSES = frozenset({400, 413})


# Matched on class names along the MRO so that this module never has to import litellm or
# openai (the exception already exists, so they are loaded; names keep the table readable).
# Order matters: litellm.Timeout is also an openai.APIConnectionError.
_BY_CLASS_NAME: tuple[tuple[str, type[LMError]], ...] = (
    ("ContextWindowExceededError", LMContextLengthError),
    ("APITimeoutError", LMTimeout),
    ("Timeout", LMTimeout),
    ("RateLimitError", LMRateLimited),
    ("APIConnectionError", LMServerError),
    ("InternalServerError", LMServerError),
    ("ServiceUnavailableError", LMServerError),
    ("BadGatewayError", LMServerError),
)


def _headers_of(exc: BaseException) -> Mapping[str, Any] | None:
    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None),
                    getattr(exc, "headers", None)):
        if headers:
            return headers
    return None


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds to wait according to `Retry-After` / `retry-after-ms`, or None.

    Example:
        >>> retry_after_seconds({"Retry-After": "2"})
        2.0
        >>> retry_after_seconds({"retry-after-ms": "250"})
        0.25
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
