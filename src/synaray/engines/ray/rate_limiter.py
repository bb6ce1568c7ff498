"""Cluster-wide rate limits: one `PacingSchedule` in an actor, shared by every evaluator."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from synaray.lm.rate_limit import (
    LATE_GRACE_S,
    MAX_REBOOKINGS,
    PacingSchedule,
    set_rate_limiter,
)

__all__ = ["RateLimiterActor", "RayRateLimiterClient", "install_rate_limiter",
           "rate_limiter_actor"]


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

    The actor books slots on its own clock. Each round trip bounds the offset between the
    clocks (the actor read its clock between our `asked` and `answered`); the client keeps
    the tightest bounds of its last round trips. It wakes at the latest the slot can be on
    its clock (never early) and judges lateness from the earliest (never too lenient), so
    one fast round trip is enough for a slow answer (a busy actor, a starved process) to
    neither delay the wake-up nor make a punctual caller look late.
    """

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self._bounds: deque[tuple[float, float]] = deque(maxlen=32)

    def offsets(self, asked: float, answered: float, actor_now: float) -> tuple[float, float]:
        """(lowest, highest) possible offset of the actor's clock minus ours, given this
        round trip and the recent ones.

        Example:
            >>> client = RayRateLimiterClient(actor=None)
            >>> client.offsets(asked=0.0, answered=0.9, actor_now=100.2)  # slow: wide
            (99.3, 100.2)
            >>> client.offsets(asked=5.0, answered=5.02, actor_now=105.01)  # fast: tight
            (99.99, 100.01)
        """
        self._bounds.append((actor_now - answered, actor_now - asked))
        return (round(max(lo for lo, _ in self._bounds), 9),
                round(min(hi for _, hi in self._bounds), 9))

    async def acquire(self, model: str, tokens: int) -> None:
        """Book a slot with the actor and sleep until it; re-book if woken up too late.

        A wake-up more than `LATE_GRACE_S` after the slot (a stalled event loop) gives the
        slot up and books another, so late requests cannot bunch with punctual ones.
        """
        for _ in range(MAX_REBOOKINGS):
            asked = time.monotonic()
            slot, actor_now = await self.actor.book.remote(model, tokens)
            low, high = self.offsets(asked, time.monotonic(), actor_now)
            delay = slot - low - time.monotonic()  # the latest the slot can be here
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() - (slot - high) <= LATE_GRACE_S:
                return

    def report(self, model: str, status: int | None, retry_after_s: float | None = None) -> None:
        self.actor.report.remote(model, status, retry_after_s)


def install_rate_limiter(actor: Any) -> None:
    set_rate_limiter(RayRateLimiterClient(actor))


def rate_limiter_actor(rate_limits: Mapping[str, Any] | None, *, name: str | None = None,
                       runtime_env: dict | None = None, detached: bool = False) -> Any:
    """The cluster-wide rate limiter (`RateLimiterActor`) for `rate_limits` (per model a
    `RateLimits` or its dict), or None without limits.

    It takes no CPU and restarts when it dies (its calls retried); with `name` it is a named
    actor that a second caller with the same name shares; `detached` lets it outlive the
    process that made it (a run's optimizer actor makes it for its evaluators).
    """
    if not rate_limits:
        return None
    import ray

    from synaray.lm.rate_limit import RateLimits
    from synaray.runs.ray_connect import NAMESPACE

    limits = {m: (v if isinstance(v, RateLimits) else RateLimits(**v)).model_dump()
              for m, v in rate_limits.items()}
    options: dict[str, Any] = {"namespace": NAMESPACE, "num_cpus": 0, "max_restarts": -1,
                               "max_task_retries": -1, "runtime_env": runtime_env}
    if name is not None:
        options.update(name=name, get_if_exists=True)
    if detached:
        options["lifetime"] = "detached"
    return ray.remote(RateLimiterActor).options(**options).remote(limits)
