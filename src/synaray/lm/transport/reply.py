"""`ChatReply`: what either transport hands back for one chat request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synaray.errors import LMOutputError

__all__ = ["ChatReply", "reply_from_litellm"]


@dataclass(frozen=True)
class ChatReply:
    """The answer text and accounting of one request.

    `loop_unit` is the unit a streamed answer kept repeating when it was closed early
    (`synaray.lm.transport.openai_stream`), else None; `usage_estimated` is True when the
    token counts are estimates (no usage from the server).

    Example:
        >>> ChatReply(text="hi", prompt_tokens=3, completion_tokens=1).text
        'hi'
    """

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    loop_unit: str | None = None
    usage_estimated: bool = False


def reply_from_litellm(litellm: Any, response: Any, model: str) -> ChatReply:
    """A litellm `ModelResponse` as a `ChatReply` (`LMOutputError` without a message)."""
    try:
        text = response.choices[0].message.content
    except (AttributeError, IndexError) as exc:
        raise LMOutputError(f"{model}: the response has no message: {exc}") from exc
    usage = getattr(response, "usage", None)
    return ChatReply(text=text,
                     prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                     completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                     cost=_cost_of(litellm, response))


def _cost_of(litellm: Any, response: Any) -> float:
    """The response's cost in USD: litellm's own figure when it computed one (it does for
    every response it logs: None for a model without a price), else `completion_cost`.

    Reading the figure instead of recomputing it saves about 1 ms of CPU per call, and for
    unpriced models (local servers) the exception `completion_cost` raises.
    """
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict) and "response_cost" in hidden:
        try:
            return float(hidden["response_cost"] or 0.0)
        except (TypeError, ValueError):
            return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # unknown model or cached response: litellm raises
        return 0.0
