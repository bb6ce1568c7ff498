"""Cluster-wide rate limits: one `PacingSchedule` in an actor, shared by every evaluator."""

from __future__ import annotations

import asyncio
import time
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

    def report(self, model: str, status: int | None, retry_after_s: float | None) -> None:
        self.schedule.report(model, status, retry_after_s)

    def stats(self) -> dict:
        return {m: {"slowdown": s.slowdown, "throttled": s.throttled}
                for m, s in self.schedule.models.items()}


class RayRateLimiterClient:
    """What an evaluator installs: asks the actor for a slot, sleeps, reports back."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def acquire(self, model: str, tokens: int) -> None:
        """Book a slot with the actor and sleep until it; re-book if woken up too late.

        The actor answers "wait `delay` seconds" from its own clock; the slot lies between
        `asked + delay` and `answered + delay` on ours. Sleeping from `answered` never
        starts early; a wake-up more than `LATE_GRACE_S` after `asked + delay` (a stalled
        event loop, a slow round trip) gives the slot up, so requests cannot bunch.
        """
        for _ in range(MAX_REBOOKINGS):
            asked = time.monotonic()
            delay = await self.actor.reserve.remote(model, tokens)
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() - (asked + delay) <= LATE_GRACE_S:
                return

    def report(self, model: str, status: int | None, retry_after_s: float | None = None) -> None:
        self.actor.report.remote(model, status, retry_after_s)


def install_rate_limiter(actor: Any) -> None:
    set_rate_limiter(RayRateLimiterClient(actor))
