"""The exceptions synaray raises, in one leaf module that imports nothing from synaray.

The tree::

    SynarayError
    ├── ConfigError (also ValueError)      a bad argument, option or config key
    ├── DataError (also ValueError)        a bad file, row or field of user data
    ├── LMError                            a language or embedding model call failed
    │   ├── LMRateLimited                  429 from the provider, after retries
    │   ├── LMTimeout                      the call timed out, after retries
    │   ├── LMServerError                  5xx from the provider, after retries
    │   ├── LMInputError                   4xx other than 429: never retried
    │   │   └── LMContextLengthError       the prompt does not fit the model's context
    │   │                                  window (a candidate's prompt, not the endpoint)
    │   └── LMOutputError                  the answer could not be parsed or validated
    ├── PreflightError                     a model a run will call cannot work (checked
    │                                      before the run spends anything)
    ├── EngineError                        an evaluation engine failed as a whole
    │   ├── EvaluatorLost
    │   └── LMFailuresError                the circuit breaker stopped a run: LM calls
    │                                      keep failing (checkpoint kept, resumable)
    ├── CheckpointError                    a checkpoint could not be read or written
    │   └── CheckpointVersionError
    └── MissingExtraError (also ImportError)  an optional extra is not installed
    UsageError (RuntimeError)              misuse: fit before compile, a closed engine...

Per-example failures (a failed LM call, an unparsable answer) do not raise out of a batch:
they become scored failures that keep the error (see `synaray.lm.LMResult`).
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointVersionError",
    "ConfigError",
    "DataError",
    "EngineError",
    "EvaluatorLost",
    "LMContextLengthError",
    "LMError",
    "LMFailuresError",
    "LMInputError",
    "LMOutputError",
    "LMRateLimited",
    "LMServerError",
    "LMTimeout",
    "MissingExtraError",
    "PreflightError",
    "SynarayError",
    "UsageError",
]


class SynarayError(Exception):
    """Base class of every error synaray raises on purpose.

    `exit_code` is what the `synaray` command exits with when this error ends it.
    """

    exit_code: int = 1


class ConfigError(SynarayError, ValueError):
    """A bad argument, option or config key: the message names it and what was expected."""


class DataError(SynarayError, ValueError):
    """Bad user data: the message names the file, row and field."""


class LMError(SynarayError):
    """A model call failed. `retryable` says whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class LMRateLimited(LMError):
    retryable = True


class LMTimeout(LMError):
    retryable = True


class LMServerError(LMError):
    retryable = True


class LMInputError(LMError):
    retryable = False


class LMContextLengthError(LMInputError):
    """The prompt does not fit the model's context window (HTTP 400/413 saying so).

    The fault of the prompt (too many or too long demos), not of the endpoint: never
    retried, and left out of the circuit breaker's failure rate.

    Example:
        >>> issubclass(LMContextLengthError, LMInputError), LMContextLengthError.retryable
        (True, False)
    """


class LMOutputError(LMError):
    retryable = False


class EngineError(SynarayError):
    """An engine failed as a whole (not one example)."""


class EvaluatorLost(EngineError):
    """An evaluator actor died and could not be restarted."""


class PreflightError(SynarayError):
    """A model a run will call failed its one cheap check request (unknown provider,
    refused connection, rejected key, missing model): nothing was spent or written.
    The message names each model and its error."""

    exit_code = 3


class LMFailuresError(EngineError):
    """The circuit breaker stopped a run because LM calls keep failing; the message shows
    the counts and the last errors. The last checkpoint is kept: fix the cause and resume.
    """

    exit_code = 4


class CheckpointError(SynarayError):
    """A checkpoint could not be read or written."""


class CheckpointVersionError(CheckpointError):
    """A checkpoint was written by a newer synaray than this one."""


class MissingExtraError(SynarayError, ImportError):
    """An optional dependency is missing; the message says which command installs it."""


class UsageError(RuntimeError):
    """The API was used in the wrong order or state (for example fit before compile)."""
