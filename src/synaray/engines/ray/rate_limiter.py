"""Cluster-wide rate limits: one `PacingSchedule` in an actor, shared by every evaluator."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from synaray.lm.rate_limit import (
    LATE_GRACE_S,
    MAX_REBOOKINGS,
    PacingSchedule,
    set_rate_limiter,
)

__all__ = ["RateLimiterActor", "RayRateLimiterClient", "install_rate_limiter"]


class RateLimiterActor:
    """Books start times for every model call in the cluster (one clock: this actor's)."""

    def __init__(self, limits: dict[str, Any]) -> None:
        self.schedule = PacingSchedule(limits)

    def reserve(self, model: str, tokens: int) -> float:
        """Seconds the caller must wait before sending."""
        now = time.monotonic()
        return max(0.0, self.schedule.reserve(model, tokens, now=now) - now)

    def book(self, model: str, tokens: int) -> tuple[float, float]:
        """(the call's slot, now), both on this actor's clock."""
        now = time.monotonic()
        return self.schedule.reserve(model, tokens, now=now), now

    def report(self, model: str, status: int | None, retry_after_s: float | None) -> None:
        self.schedule.report(model, status, retry_after_s)

    def stats(self) -> dict:
        return {m: {"slowdown": s.slowdown, "throttled": s.throttled}
                for m, s in self.schedule.models.items()}


class RayRateLimiterClient:
    """What an evaluator installs: asks the actor for a slot, sleeps, reports back.

    The actor books slots on its own clock. The client maps them onto its clock with the
    offset measured on the fastest of its last round trips (NTP's rule: the offset of a
    round trip is known within half its duration), so a slow answer (a busy actor, a
    starved process) neither delays the wake-up nor makes a punctual caller look late.
    """

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self._samples: deque[tuple[float, float]] = deque(maxlen=32)  # (round trip, offset)

    def _offset(self, asked: float, answered: float, actor_now: float) -> float:
        """The actor's clock minus ours, from the fastest recent round trip."""
        self._samples.append((answered - asked, actor_now - (asked + answered) / 2.0))
        return min(self._samples)[1]

    async def acquire(self, model: str, tokens: int) -> None:
        """Book a slot with the actor and sleep until it; re-book if woken up too late.

        A wake-up more than `LATE_GRACE_S` after the slot (a stalled event loop) gives the
        slot up and books another, so late requests cannot bunch with punctual ones.
        """
        for _ in range(MAX_REBOOKINGS):
            asked = time.monotonic()
            slot, actor_now = await self.actor.book.remote(model, tokens)
            local_slot = slot - self._offset(asked, time.monotonic(), actor_now)
            delay = local_slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() - local_slot <= LATE_GRACE_S:
                return

    def report(self, model: str, status: int | None, retry_after_s: float | None = None) -> None:
        self.actor.report.remote(model, status, retry_after_s)


def install_rate_limiter(actor: Any) -> None:
    set_rate_limiter(RayRateLimiterClient(actor))
