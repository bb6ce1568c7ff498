"""Usage accounting per model: calls, cache hits, failures, tokens, cost, latency.

Each `LanguageModel` / `EmbeddingModel` instance keeps its own `UsageStats` (`lm.usage`) and
also adds every call to a process-wide registry keyed by model name (`get_usage()`). Stats
are plain sums, so they merge exactly (`merge`) and travel as JSON (`to_dict`/`from_dict`):
Ray workers ship theirs to the driver, which adds them up.

Example:
    >>> a = UsageStats(model="m", calls=2, prompt_tokens=10)
    >>> b = UsageStats.from_dict(UsageStats(model="m", calls=1, prompt_tokens=5).to_dict())
    >>> a.merge(b).calls, a.prompt_tokens
    (3, 15)
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["UsageStats", "get_usage", "record_usage", "reset_usage"]


@dataclass
class UsageStats:
    """Sums over the calls of one model.

    Attributes:
        model: the model name.
        calls: calls made through `__call__` (cache hits included).
        requests: requests sent to the provider (retries and repair attempts included).
        cache_hits: calls answered from the response cache.
        failures: calls that ended with `ok=False` (or raised, for embeddings).
        failures_by_type: failures per synaray error class name, e.g. {"LMTimeout": 2}.
        prompt_tokens: prompt tokens reported by the provider.
        completion_tokens: completion tokens reported by the provider.
        cost: cost in USD where litellm knows the price (0.0 otherwise).
        latency_s: summed wall time of the calls, in seconds.
    """

    model: str = ""
    calls: int = 0
    requests: int = 0
    cache_hits: int = 0
    failures: int = 0
    failures_by_type: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0

    def record(self, *, ok: bool, cached: bool = False, requests: int = 0,
               prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0,
               latency_s: float = 0.0, error_type: str | None = None) -> None:
        """Add one call."""
        self.calls += 1
        self.requests += requests
        self.cache_hits += int(cached)
        if not ok:
            self.failures += 1
            key = error_type or "LMError"
            self.failures_by_type[key] = self.failures_by_type.get(key, 0) + 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost += cost
        self.latency_s += latency_s

    def merge(self, other: UsageStats) -> UsageStats:
        """Add `other` into this object (in place) and return it."""
        for f in fields(self):
            if f.name == "model":
                continue
            if f.name == "failures_by_type":
                for key, count in other.failures_by_type.items():
                    self.failures_by_type[key] = self.failures_by_type.get(key, 0) + count
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.model = self.model or other.model
        return self

    def copy(self) -> UsageStats:
        return UsageStats.from_dict(self.to_dict())

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures_by_type"] = dict(self.failures_by_type)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageStats:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def __repr__(self) -> str:
        return (f"<UsageStats model={self.model} calls={self.calls} "
                f"cache_hits={self.cache_hits} failures={self.failures} "
                f"tokens={self.total_tokens} cost={self.cost:.6f}>")


_LOCK = threading.Lock()
_REGISTRY: dict[str, UsageStats] = {}


def record_usage(stats: UsageStats, **call: Any) -> None:
    """Add one call to `stats` and to the process-wide entry of `stats.model`."""
    with _LOCK:
        stats.record(**call)
        entry = _REGISTRY.setdefault(stats.model, UsageStats(model=stats.model))
        entry.record(**call)


def get_usage() -> dict[str, UsageStats]:
    """Copies of this process's stats, keyed by model name."""
    with _LOCK:
        return {model: stats.copy() for model, stats in _REGISTRY.items()}


def reset_usage() -> None:
    """Forget this process's stats (instances keep their own `usage`)."""
    with _LOCK:
        _REGISTRY.clear()
