"""`call_with_retries`: which failures are retried, how often, and how long it waits."""

from __future__ import annotations

import asyncio

import pytest

from synaray.errors import LMInputError, LMRateLimited, LMServerError
from synaray.lm.retry import RetryPolicy, call_with_retries


class Flaky:
    """Raises the given errors in order, then answers "done"; counts the attempts."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.fixture
def waits(monkeypatch):
    """The delays slept between attempts (no real sleeping)."""
    slept: list[float] = []

    async def fake_sleep(delay, *args, **kwargs):
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return slept


async def test_success_at_once_makes_one_attempt(waits):
    fn = Flaky()
    assert await call_with_retries(fn, RetryPolicy(retries=3)) == "done"
    assert fn.calls == 1 and waits == []


async def test_retryable_failures_are_retried_with_growing_jittered_waits(waits):
    fn = Flaky(LMServerError("a"), LMServerError("b"), LMServerError("c"))
    policy = RetryPolicy(retries=3, backoff_base_s=1.0, backoff_max_s=30.0)
    assert await call_with_retries(fn, policy) == "done"
    assert fn.calls == 4 and len(waits) == 3
    for n, wait in enumerate(waits, start=1):  # equal jitter: d/2 <= wait <= d, d = 2**(n-1)
        assert 2 ** (n - 1) / 2 <= wait <= 2 ** (n - 1)


async def test_retry_after_sets_the_wait(waits):
    fn = Flaky(LMRateLimited("slow", status_code=429, retry_after_s=2.5),
               LMRateLimited("slow", status_code=429, retry_after_s=0.5))
    assert await call_with_retries(fn, RetryPolicy(retries=2)) == "done"
    assert waits == [2.5, 0.5]


async def test_retries_run_out_and_the_last_error_is_raised(waits):
    fn = Flaky(*(LMServerError(str(i)) for i in range(5)))
    with pytest.raises(LMServerError, match=r"^2$"):
        await call_with_retries(fn, RetryPolicy(retries=2, backoff_base_s=0.01))
    assert fn.calls == 3 and len(waits) == 2


@pytest.mark.parametrize("retries", [0, 3])
async def test_input_errors_are_never_retried(waits, retries):
    fn = Flaky(LMInputError("bad", status_code=400))
    with pytest.raises(LMInputError):
        await call_with_retries(fn, RetryPolicy(retries=retries))
    assert fn.calls == 1 and waits == []


async def test_no_retries_means_one_attempt(waits):
    fn = Flaky(LMServerError("down"))
    with pytest.raises(LMServerError):
        await call_with_retries(fn, RetryPolicy(retries=0))
    assert fn.calls == 1
