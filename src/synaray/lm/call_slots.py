"""A bound on LM calls in flight, set by an engine around the work it runs.

An engine bounds *LM calls*, not samples: the parsing, reward and bookkeeping of a sample
do not hold a slot, so the provider always sees the full concurrency. The bound travels in
a context variable, so every call made under `limit_lm_calls` (from any module, any
language or embedding model, a judge inside a reward) shares it; `ModelClient` takes a slot
for each request attempt, after its own per-model slot.

Example:
    >>> import asyncio
    >>> from synaray.lm.call_slots import limit_lm_calls, lm_call_slot
    >>> async def main():
    ...     with limit_lm_calls(asyncio.Semaphore(2)):
    ...         async with lm_call_slot():
    ...             return "sent"
    >>> asyncio.run(main())
    'sent'
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar

__all__ = ["limit_lm_calls", "lm_call_slot"]

_SLOTS: ContextVar[asyncio.Semaphore | None] = ContextVar("synaray_lm_call_slots",
                                                          default=None)


@contextlib.contextmanager
def limit_lm_calls(semaphore: asyncio.Semaphore | None) -> Iterator[None]:
    """LM requests started in this context (and tasks it creates) take a slot of `semaphore`;
    None lifts the bound."""
    token = _SLOTS.set(semaphore)
    try:
        yield
    finally:
        _SLOTS.reset(token)


@contextlib.asynccontextmanager
async def lm_call_slot() -> AsyncIterator[None]:
    """Hold one slot of the current bound (none set: no wait)."""
    semaphore = _SLOTS.get()
    if semaphore is None:
        yield
        return
    async with semaphore:
        yield
