"""Observers of language-model calls: how tracing (MLflow spans) sees every call.

The LM layer knows nothing of MLflow. A tracer registers an observer with
`add_call_observer`; `LanguageModel.__call__` then wraps each call in `observe_call`, which
calls `observer.start(call)` before the request and `observer.end(call, token)` after it,
with `call.result` set to the `LMResult`. With no observer registered the call takes a fast
path and nothing here runs. An observer that raises is dropped from that call with a
warning: tracing never fails a model call.

Example:
    >>> class Count:
    ...     def __init__(self):
    ...         self.seen = []
    ...     def start(self, call):
    ...         return None
    ...     def end(self, call, token):
    ...         self.seen.append(call.model)
    >>> counter = Count()
    >>> add_call_observer(counter)
    >>> with observe_call(ObservedCall(model="m", messages=[])) as call:
    ...     call.result = "done"
    >>> counter.seen
    ['m']
    >>> remove_call_observer(counter)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["CallObserver", "ObservedCall", "add_call_observer", "has_call_observers",
           "observe_call", "remove_call_observer"]

logger = logging.getLogger(__name__)


@dataclass
class ObservedCall:
    """One model call as observers see it.

    Attributes:
        model: the configured model name.
        messages: the chat messages sent (before schema instructions are added).
        kind: "chat" (a `LanguageModel` call).
        schema_title: the title of the output schema, if any.
        result: the `LMResult`, set before observers' `end` runs (None if the call raised).
        error: the exception the call raised (configuration errors only), else None.
    """

    model: str
    messages: list[dict[str, Any]]
    kind: str = "chat"
    schema_title: str | None = None
    result: Any = None
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class CallObserver(Protocol):
    """What `add_call_observer` takes: `start` returns a token handed back to `end`."""

    def start(self, call: ObservedCall) -> Any: ...

    def end(self, call: ObservedCall, token: Any) -> None: ...


_OBSERVERS: list[CallObserver] = []


def add_call_observer(observer: CallObserver) -> None:
    """Register `observer` for every model call of this process (once)."""
    if observer not in _OBSERVERS:
        _OBSERVERS.append(observer)


def remove_call_observer(observer: CallObserver) -> None:
    """Unregister `observer` (no error if it was not registered)."""
    if observer in _OBSERVERS:
        _OBSERVERS.remove(observer)


def has_call_observers() -> bool:
    return bool(_OBSERVERS)


@contextlib.contextmanager
def observe_call(call: ObservedCall) -> Iterator[ObservedCall]:
    """Run the registered observers around the block; the block sets `call.result`."""
    started = []
    for observer in list(_OBSERVERS):
        try:
            started.append((observer, observer.start(call)))
        except Exception as exc:  # tracing must not fail a model call
            logger.warning("synaray: LM call observer %r failed to start: %s", observer, exc)
    try:
        yield call
    except BaseException as exc:
        call.error = exc
        raise
    finally:
        for observer, token in reversed(started):
            try:
                observer.end(call, token)
            except Exception as exc:  # tracing must not fail a model call
                logger.warning("synaray: LM call observer %r failed to end: %s", observer, exc)
