"""`LMResult`: what one language-model call gave, success or failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LMResult"]


@dataclass
class LMResult:
    """The outcome of one `LanguageModel` call. Failures are values, not exceptions.

    Attributes:
        ok: True when the call succeeded (and, with a schema, the answer validated).
        json: the validated answer as JSON when a schema or data model was given, else None.
        text: the raw text of the (last) answer, if any.
        error: what went wrong, when `ok` is False.
        error_type: the class name of the synaray error, e.g. "LMRateLimited", "LMOutputError".
        prompt_tokens: prompt tokens of all requests of this call (0 on a cache hit).
        completion_tokens: completion tokens of all requests of this call (0 on a cache hit).
        cost: cost in USD where litellm knows the model's price, else 0.0.
        latency_s: wall time of the call in seconds, retries and repair included.
        cached: True when the answer came from the response cache (no request was sent).
        attempts: requests sent: retries and the repair attempt included, 0 on a cache hit.
        model: the model name the call was made with.

    Example:
        >>> result = LMResult(ok=True, json={"answer": "4"}, text='{"answer": "4"}')
        >>> result.ok, result.json["answer"]
        (True, '4')
    """

    ok: bool
    json: dict | None = None
    text: str | None = None
    error: str | None = None
    error_type: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    cached: bool = False
    attempts: int = 0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (for traces and results shipped between processes)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LMResult:
        return cls(**data)

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"failed {self.error_type}"
        origin = " cached" if self.cached else f" attempts={self.attempts}"
        return f"<LMResult {state}{origin} latency_s={self.latency_s:.3f}>"
