"""Per-sample traces: what happened while one example ran through a program.

An engine opens a `Trace` around each sample (`with trace_scope() as trace: await program(x)`).
Every LM call records its outcome into the current trace and every module records its
inputs and outputs, without any of them knowing who is listening. asyncio tasks copy the
context when they are created, so concurrent samples never mix their traces.

The optimizers use module records to turn good predictions into few-shot examples, and the
engines use LM records to count calls, tokens, cost and failures per sample.

Example:
    >>> with trace_scope() as trace:
    ...     record_lm_call(LMCallRecord(model="m", ok=False, error="boom"))
    >>> trace.lm_calls, trace.failures
    (1, 1)
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LMCallRecord",
    "ModuleRecord",
    "Trace",
    "count_errors",
    "current_trace",
    "record_lm_call",
    "record_module",
    "trace_scope",
]


@dataclass
class LMCallRecord:
    """One model call as the trace sees it."""

    model: str
    ok: bool
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    error: str | None = None
    error_type: str | None = None


@dataclass
class ModuleRecord:
    """One trainable module's inputs and outputs (JSON) for the sample."""

    module: str
    inputs: dict | None
    outputs: dict | None


@dataclass
class Trace:
    lm: list[LMCallRecord] = field(default_factory=list)
    modules: list[ModuleRecord] = field(default_factory=list)

    @property
    def lm_calls(self) -> int:
        """Calls that reached a model (cache hits not counted)."""
        return sum(1 for r in self.lm if not r.cached)

    @property
    def cache_hits(self) -> int:
        return sum(1 for r in self.lm if r.cached)

    @property
    def failures(self) -> int:
        return sum(1 for r in self.lm if not r.ok)

    @property
    def errors(self) -> list[str]:
        """One `"<error type>: <message>"` per failed call (an `EvalResult.error` joins them
        with "; "; `count_errors` reads them back)."""
        return [f"{r.error_type or 'Error'}: {r.error}" for r in self.lm if not r.ok]

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.lm if not r.cached)

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.lm if not r.cached)

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.lm if not r.cached)

    def summary(self) -> dict[str, Any]:
        return {"lm_calls": self.lm_calls, "cache_hits": self.cache_hits,
                "failures": self.failures, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": self.cost}


_CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("synaray_trace",
                                                                        default=None)


def current_trace() -> Trace | None:
    return _CURRENT.get()


@contextlib.contextmanager
def trace_scope(trace: Trace | None = None) -> Iterator[Trace]:
    """Make `trace` (or a new one) the current trace inside the block."""
    trace = trace if trace is not None else Trace()
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)


def record_lm_call(record: LMCallRecord) -> None:
    trace = _CURRENT.get()
    if trace is not None:
        trace.lm.append(record)


def record_module(module: str, inputs: dict | None, outputs: dict | None) -> None:
    trace = _CURRENT.get()
    if trace is not None:
        trace.modules.append(ModuleRecord(module, inputs, outputs))


def count_errors(error: str | None, error_type: str) -> int:
    """How many of the failed calls in a result's `error` text (`Trace.errors` joined with
    "; ") failed with `error_type`: what a result carries through every engine.

    Example:
        >>> count_errors("LMContextLengthError: m: too long; LMTimeout: m: slow",
        ...              "LMContextLengthError")
        1
    """
    if not error:
        return 0
    return len(re.findall(rf"(?:^|; ){re.escape(error_type)}: ", error))
