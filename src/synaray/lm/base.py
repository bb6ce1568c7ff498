"""What `LanguageModel` and `EmbeddingModel` share: config, cache, concurrency, accounting.

Both talk to litellm, retry the same way, own a response cache, bound their concurrent
requests per event loop, go through the process's rate limiter when one is installed
(`synaray.lm.rate_limit.set_rate_limiter`, done by the Ray engine), count usage per model
and report each call to the current trace.
Both are pickled to Ray actors: `__getstate__` keeps the constructor arguments (and the
API key, which a worker needs) and drops semaphores, cache handles and resolved endpoints,
which are rebuilt lazily where the object lands.
"""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from synaray.errors import ConfigError, LMError
from synaray.lm.cache import ResponseCache, resolve_cache
from synaray.lm.call_slots import lm_call_slot
from synaray.lm.errors import map_litellm_errors
from synaray.lm.rate_limit import get_rate_limiter
from synaray.lm.retry import RetryPolicy
from synaray.lm.usage import UsageStats, record_usage
from synaray.utils.tracing import LMCallRecord, record_lm_call

__all__ = ["ModelClient", "estimate_tokens"]

T = TypeVar("T")
# A safety net over litellm's own `timeout` (which should fire first).
_DEADLINE_MARGIN_S = 5.0

# litellm arguments that do not change an answer: left out of cache keys.
NON_SEMANTIC_KWARGS = frozenset({
    "api_base", "api_key", "api_version", "base_url", "extra_headers", "headers", "metadata",
    "model", "num_retries", "max_retries", "timeout", "request_timeout", "mock_delay",
})
_SECRET_KEY = re.compile(r"secret|password|credential|(key|token)$", re.IGNORECASE)


def estimate_tokens(texts: list[str], completion_tokens: int = 0) -> int:
    """A rough token count for rate limiting: 4 characters per token, plus the answer."""
    return sum(len(t) for t in texts) // 4 + 1 + completion_tokens


def check_positive(name: str, value: Any, *, integer: bool = False,
                   allow_none: bool = False) -> None:
    """Raise `ConfigError` (Keras wording) unless `value` is a positive number."""
    if value is None and allow_none:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        expected = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                          f"Expected {expected}{' or None' if allow_none else ''}.")


class ModelClient:
    """Base of `LanguageModel` and `EmbeddingModel` (not used directly).

    Args:
        model: the litellm model name, e.g. "openai/gpt-4o-mini" or "local/minilm".
        api_base: the endpoint, when not the provider's default.
        api_key: the key; never written to configs or reprs.
        api_key_env: the name of the environment variable holding the key (written to
            configs; each process reads the variable from its own environment, see
            `synaray.lm.keys`).
        timeout: seconds before one request is abandoned (then retried).
        retries: retries after the first attempt, for 429, timeouts and 5xx.
        cache: True (the file `$SYNARAY_CACHE_DIR/lm_cache.sqlite`), False/None (off), or
            the path of a SQLite file.
        max_concurrency: requests of this object in flight at once, per event loop.
        backoff_base_s: first backoff delay in seconds (doubled at each retry).
        backoff_max_s: longest backoff delay in seconds.
        **litellm_kwargs: passed to litellm with every request.
    """

    def __init__(self, model: str, *, api_base: str | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, timeout: float = 60.0, retries: int = 4,
                 cache: bool | str | None = True, max_concurrency: int = 8,
                 backoff_base_s: float = 1.0,
                 backoff_max_s: float = 30.0, **litellm_kwargs: Any) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"Invalid value for argument `model`. Received: {model!r}. "
                              "Expected a litellm model name such as 'openai/gpt-4o-mini'.")
        if api_base is not None and not isinstance(api_base, str):
            raise ConfigError(f"Invalid value for argument `api_base`. Received: {api_base!r}. "
                              "Expected a URL string or None.")
        if api_key_env is not None and (not isinstance(api_key_env, str)
                                        or not api_key_env.strip()):
            raise ConfigError(f"Invalid value for argument `api_key_env`. Received: "
                              f"{api_key_env!r}. Expected the name of an environment variable.")
        check_positive("timeout", timeout)
        check_positive("max_concurrency", max_concurrency, integer=True)
        if isinstance(cache, os.PathLike):
            cache = os.fspath(cache)
        if cache is not None and not isinstance(cache, bool | str):
            raise ConfigError(f"Invalid value for argument `cache`. Received: {cache!r}. "
                              "Expected True, False, None or the path of a SQLite file.")
        self.model = model
        self.api_base = api_base.rstrip("/") if api_base else None
        self.api_key = api_key
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.cache = cache
        self.max_concurrency = max_concurrency
        self.retry_policy = RetryPolicy(retries=retries, backoff_base_s=backoff_base_s,
                                        backoff_max_s=backoff_max_s)
        self.litellm_kwargs = dict(litellm_kwargs)
        self._init_runtime()

    def _init_runtime(self) -> None:
        """Create the process-local parts (after `__init__` and after unpickling)."""
        self._usage = UsageStats(model=self.model)
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                    asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())
        self._cache: ResponseCache | None = None
        self._cache_resolved = False

    # -- runtime helpers -------------------------------------------------------------
    @property
    def retries(self) -> int:
        return self.retry_policy.retries

    @property
    def usage(self) -> UsageStats:
        """This object's usage in this process (see `synaray.lm.get_usage` for all)."""
        return self._usage

    @property
    def response_cache(self) -> ResponseCache | None:
        if not self._cache_resolved:
            self._cache = resolve_cache(self.cache)
            self._cache_resolved = True
        return self._cache

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.max_concurrency)
            self._semaphores[loop] = semaphore
        return semaphore

    async def _attempt(self, send: Callable[[], Awaitable[T]], tokens: int) -> T:
        """One request: a concurrency slot, the process's rate limiter, error mapping.

        `tokens` is the estimate booked with the rate limiter (`synaray.lm.rate_limit`);
        the outcome (status, `Retry-After`) is reported back to it. An engine's bound on LM
        calls (`synaray.lm.call_slots`) is taken after this object's own slot.
        """
        async with self._semaphore(), lm_call_slot():
            limiter = get_rate_limiter()
            if limiter is not None:
                await limiter.acquire(self.model, tokens)
            try:
                with map_litellm_errors(self.model):
                    async with asyncio.timeout(self.timeout + _DEADLINE_MARGIN_S):
                        result = await send()
            except LMError as exc:
                if limiter is not None:
                    limiter.report(self.model, exc.status_code, exc.retry_after_s)
                raise
            if limiter is not None:
                limiter.report(self.model, 200, None)
            return result

    def _api_key(self) -> str | None:
        """The key to send from this process (`synaray.lm.keys.resolve_api_key`)."""
        from synaray.lm.keys import resolve_api_key

        return resolve_api_key(self)

    def _semantic_kwargs(self, extra: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.litellm_kwargs, **extra}
        return {k: v for k, v in merged.items() if k not in NON_SEMANTIC_KWARGS}

    def _account(self, *, ok: bool, cached: bool, requests: int, prompt_tokens: int,
                 completion_tokens: int, cost: float, latency_s: float,
                 error: str | None = None, error_type: str | None = None) -> None:
        """Add one call to the usage stats and to the current trace."""
        record_usage(self._usage, ok=ok, cached=cached, requests=requests,
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                     cost=cost, latency_s=latency_s, error_type=error_type)
        record_lm_call(LMCallRecord(
            model=self.model, ok=ok, cached=cached, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, cost=cost, latency_s=latency_s,
            error=error, error_type=error_type))

    # -- config and pickling ---------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON; the API key (and secret-looking kwargs) left out."""
        config = {
            "model": self.model,
            "api_base": self.api_base,
            **({"api_key_env": self.api_key_env} if self.api_key_env else {}),
            "timeout": self.timeout,
            "retries": self.retry_policy.retries,
            "cache": self.cache,
            "max_concurrency": self.max_concurrency,
            "backoff_base_s": self.retry_policy.backoff_base_s,
            "backoff_max_s": self.retry_policy.backoff_max_s,
        }
        config.update({k: v for k, v in self.litellm_kwargs.items() if not _SECRET_KEY.search(k)})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelClient:
        return cls(**config)

    def __getstate__(self) -> dict[str, Any]:
        runtime = {"_usage", "_semaphores", "_cache", "_cache_resolved"} | self._runtime_fields()
        return {k: v for k, v in self.__dict__.items() if k not in runtime}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def _runtime_fields(self) -> set[str]:
        """Attributes of a subclass that `__getstate__` drops (rebuilt by `_init_runtime`)."""
        return set()

    def __repr__(self) -> str:
        base = f" api_base={self.api_base}" if self.api_base else ""
        return f"<{type(self).__name__} model={self.model}{base}>"
