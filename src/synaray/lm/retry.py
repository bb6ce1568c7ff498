"""Retries with exponential backoff and jitter (tenacity), honouring `Retry-After`.

Only errors marked `retryable` in `synaray.errors` are retried: `LMRateLimited` (429),
`LMTimeout` and `LMServerError` (5xx, connection refused). `LMInputError` (any other 4xx)
and `LMOutputError` fail at once. litellm's own retries stay off (`num_retries=0`), so the
number of requests a call makes is decided here only.

The wait before retry `n` (1-based) is `Retry-After` when the provider sent one (capped at
`retry_after_max_s`), else "equal jitter": `d/2 + uniform(0, d/2)` with
`d = min(backoff_max_s, backoff_base_s * 2 ** (n - 1))`, so waits grow but never drop to 0.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import tenacity

from synaray.errors import ConfigError, LMError

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a model call.

    Args:
        retries: retries after the first attempt (0 = one attempt only).
        backoff_base_s: first backoff delay in seconds, doubled at every retry.
        backoff_max_s: upper bound of one backoff delay, in seconds.
        retry_after_max_s: upper bound applied to a provider's `Retry-After`, in seconds.

    Example:
        >>> RetryPolicy(retries=2, backoff_base_s=0.01).delay_s(1, None) <= 0.01
        True
    """

    retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise ConfigError(
                f"Invalid value for argument `retries`. Received: {self.retries!r}. "
                "Expected an integer >= 0."
            )
        for name in ("backoff_base_s", "backoff_max_s", "retry_after_max_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(
                    f"Invalid value for argument `{name}`. Received: {value!r}. "
                    "Expected a number of seconds >= 0."
                )

    def delay_s(self, retry_number: int, retry_after_s: float | None) -> float:
        """Seconds to wait before retry `retry_number` (1-based)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.retry_after_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def to_dict(self) -> dict:
        return asdict(self)


class _Wait(tenacity.wait.wait_base):
    """The policy's delay; tenacity's attempt 1 is the call's attempt `1 + offset`."""

    def __init__(self, policy: RetryPolicy, offset: int = 0) -> None:
        self.policy = policy
        self.offset = offset

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after_s", None)
        return self.policy.delay_s(retry_state.attempt_number + self.offset, retry_after)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, LMError) and exc.retryable


async def call_with_retries(fn: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Await `fn()` until it succeeds, fails with a non-retryable error, or retries run out.

    `fn` must raise `synaray.errors.LMError` subclasses (see `map_litellm_errors`); the last
    error is re-raised as is.

    The first attempt is a plain await: setting up tenacity's loop costs about 0.3 ms of CPU,
    a sixth of a whole direct-HTTP call, and most calls succeed at once. After a retryable
    failure, the wait before retry 1 is the policy's, and tenacity runs retries 2.. with
    the same rule (attempt numbers shifted by one).
    """
    try:
        return await fn()
    except LMError as exc:
        if not exc.retryable or policy.retries == 0:
            raise
        await asyncio.sleep(policy.delay_s(1, exc.retry_after_s))
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.retries),
        wait=_Wait(policy, offset=1),
        retry=tenacity.retry_if_exception(_is_retryable),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            result = await fn()
    return result
