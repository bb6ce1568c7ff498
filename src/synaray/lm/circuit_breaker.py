"""`CircuitBreaker`: stop a run whose LM calls keep failing, instead of scoring zeros.

The trainer feeds it the per-sample results of each evaluation batch (their `lm_calls`,
`lm_failures` and `error`, which both engines return). It trips, raising
`synaray.errors.LMFailuresError` with the counts and the last errors, when

- all of the first `first_calls` LM calls of the run failed (a wrong key, model or
  endpoint that the preflight did not catch), or
- more than `max_failure_rate` of the last `window` calls failed (the provider went down
  or started refusing mid-run).

A call that failed because its prompt does not fit the model's context window
(`LMContextLengthError`) counts for the first rule (a program whose own input never fits
stops at once) but not for the rate: it is the fault of a candidate's prompt (too many
or too long demos), which scores 0 and which the few-shot search learns from, not of the
provider. A result's context overflows are read from its `error` text (`count_errors`),
which every engine carries. When the breaker trips on such failures, its message says so.

The trainer checks it after each batch, before the optimizer sees the batch, so the last
checkpoint stays the last good step and `resume` redoes the batch (failed calls are never
cached).

Example:
    >>> from synaray.optimizers.protocol import EvalResult
    >>> breaker = CircuitBreaker(first_calls=2)
    >>> bad = EvalResult("c", "0", "train", 0.0, None, error="LMInputError: 401",
    ...                  lm_calls=1, lm_failures=1)
    >>> breaker.update([bad, bad])
    Traceback (most recent call last):
    ...
    synaray.errors.LMFailuresError: stopped: all of the first 2 LM calls failed ...
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from synaray.errors import ConfigError, LMContextLengthError, LMFailuresError
from synaray.utils.tracing import count_errors

__all__ = ["CircuitBreaker", "circuit_breaker_from"]

_SHOWN_ERRORS = 5
_CONTEXT_ERROR = LMContextLengthError.__name__


class CircuitBreaker:
    """Counts LM call outcomes; raises `LMFailuresError` when they keep failing.

    Args:
        first_calls: trip when all of the first this many LM calls failed (0: never).
        window: the number of most recent LM calls the failure rate is taken over.
        max_failure_rate: trip when more than this share of the last `window` calls
            failed (a number in (0, 1]; 1 never trips on the rate).

    Example:
        >>> CircuitBreaker(window=50, max_failure_rate=0.8).window
        50
    """

    def __init__(self, first_calls: int = 20, window: int = 100,
                 max_failure_rate: float = 0.5) -> None:
        for name, value in (("first_calls", first_calls), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                                  "Expected an integer >= 0.")
        if isinstance(max_failure_rate, bool) or not isinstance(max_failure_rate, int | float) \
                or not 0 < max_failure_rate <= 1:
            raise ConfigError(f"Invalid value for argument `max_failure_rate`. Received: "
                              f"{max_failure_rate!r}. Expected a number in (0, 1].")
        self.first_calls = first_calls
        self.window = window
        self.max_failure_rate = float(max_failure_rate)
        self.calls = 0
        self.failures = 0
        self.context_failures = 0
        self._first_ok = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=max(window, 1))
        self._errors: collections.deque[str] = collections.deque(maxlen=_SHOWN_ERRORS)

    def get_config(self) -> dict[str, Any]:
        return {"first_calls": self.first_calls, "window": self.window,
                "max_failure_rate": self.max_failure_rate}

    def update(self, results: Iterable[Any]) -> None:
        """Count the LM calls of `results` (EvalResults); raise if the breaker trips.

        Raises:
            LMFailuresError: the calls keep failing (see the module docstring).
        """
        for result in results:
            calls = int(getattr(result, "lm_calls", 0) or 0)
            failed = min(int(getattr(result, "lm_failures", 0) or 0), calls)
            error = getattr(result, "error", None)
            if failed and error:
                self._errors.append(str(error))
            overflows = min(count_errors(error, _CONTEXT_ERROR), failed) if failed else 0
            for _ in range(overflows):
                self._count(False, in_window=False)
            for ok in [False] * (failed - overflows) + [True] * (calls - failed):
                self._count(ok)
        self.check()

    def _count(self, ok: bool, in_window: bool = True) -> None:
        if self.calls < self.first_calls and ok:
            self._first_ok += 1
        self.calls += 1
        self.failures += not ok
        self.context_failures += not in_window
        if in_window:
            self._recent.append(ok)

    def check(self) -> None:
        """Raise `LMFailuresError` when the counts so far trip the breaker."""
        if self.first_calls and self.calls >= self.first_calls and self._first_ok == 0:
            self._trip(f"all of the first {self.first_calls} LM calls failed")
        if self.window and len(self._recent) >= self.window:
            failed = self._recent.count(False)
            if failed > self.max_failure_rate * len(self._recent):
                self._trip(f"{failed} of the last {len(self._recent)} LM calls failed "
                           f"(more than {self.max_failure_rate:.0%})")

    def _trip(self, reason: str) -> None:
        errors = "\n".join(f"  - {e}" for e in dict.fromkeys(self._errors))
        overflows, fix = "", "the model, key or endpoint"
        if self.context_failures:
            share = ("all" if self.context_failures == self.failures
                     else str(self.context_failures))
            overflows = (f"; {share} of them: prompts too long for the model's context, use "
                         "fewer or shorter demos, shorter inputs or a model with a longer "
                         "context")
            if self.context_failures == self.failures:
                fix = "the prompts"
        raise LMFailuresError(
            f"stopped: {reason} ({self.failures} of {self.calls} failed in this run"
            f"{overflows}). The last checkpoint is kept: fix {fix} and resume the run. "
            f"Last errors:\n{errors or '  (none recorded)'}")

    def __repr__(self) -> str:
        return (f"<CircuitBreaker failures={self.failures}/{self.calls} "
                f"first_calls={self.first_calls} window={self.window} "
                f"max_failure_rate={self.max_failure_rate}>")


def circuit_breaker_from(value: Any) -> CircuitBreaker | None:
    """A breaker from a fit argument: None/True (the defaults), False (off), a dict of
    settings, or a `CircuitBreaker`."""
    if value is None or value is True:
        return CircuitBreaker()
    if value is False:
        return None
    if isinstance(value, CircuitBreaker):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"first_calls", "window", "max_failure_rate"})
        if unknown:
            raise ConfigError(f"Invalid value for argument `circuit_breaker`: unknown "
                              f"setting(s) {unknown}. Expected first_calls, window, "
                              "max_failure_rate.")
        return CircuitBreaker(**value)
    raise ConfigError(f"Invalid value for argument `circuit_breaker`. Received: {value!r}. "
                      "Expected True, False, a dict of settings or a CircuitBreaker.")
