"""`RewardFunctionWrapper`: a plain function (async or not) as a `Reward`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from synaray.errors import ConfigError
from synaray.rewards.reward import Reward
from synaray.saving import deserialize_object, serialize_object

__all__ = ["FunctionRewardMixin", "RewardFunctionWrapper", "function_name"]


def function_name(fn: Callable) -> str:
    """A readable name for a callable (its `__name__`, or its class name)."""
    return getattr(fn, "__name__", None) or type(fn).__name__


class FunctionRewardMixin:
    """A reward that calls a function `fn(y_true, y_pred, **kwargs)`: the argument check,
    the call (async or not) and the config (`fn` by name, `kwargs` inline), shared by
    `RewardFunctionWrapper` (one sample) and `BatchRewardFunctionWrapper` (the batch).

    Subclasses put it before their `Reward` base and set `FN_SIGNATURE` (for messages).
    """

    FN_SIGNATURE = "fn(y_true, y_pred, **kwargs) -> float"

    def __init__(self, fn: Callable[..., Any], name: str | None = None,
                 reduction: str | None = "mean", in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise ConfigError(f"Invalid value for argument `fn`. Received: {fn!r}. Expected a "
                              f"function {self.FN_SIGNATURE}.")
        super().__init__(name=name or function_name(fn),  # type: ignore[call-arg]
                         reduction=reduction, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.fn = fn
        self.fn_kwargs = kwargs

    async def call(self, y_true: Any, y_pred: Any) -> Any:
        value = self.fn(y_true, y_pred, **self.fn_kwargs)
        return await value if inspect.isawaitable(value) else value

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),  # type: ignore[misc]
                "fn": serialize_object(self.fn), **serialize_object(self.fn_kwargs)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        config = dict(config)
        fn = deserialize_object(config.pop("fn"))
        return cls(fn=fn, **{k: deserialize_object(v) for k, v in config.items()})


class RewardFunctionWrapper(FunctionRewardMixin, Reward):
    """Wrap a stateless function `fn(y_true, y_pred, **kwargs) -> float` into a `Reward`.

    `fn` may be async or a plain function. It receives the masked `JsonDataModel`s of one
    sample (never a missing prediction: those score 0.0 before `fn` is called).

    To save and reload a program that uses it, `fn` must be a named, importable function;
    one defined in a script or notebook must be registered with
    `@synaray.saving.register_synaray_serializable()` so that it reloads by name.

    Args:
        fn: the reward function.
        name: defaults to the function's name.
        reduction: see `Reward`.
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.
        **kwargs: JSON-serializable keyword arguments passed on to `fn` (kept in config).

    Example:
        >>> import asyncio
        >>> def same_answer(y_true, y_pred):
        ...     return float(y_true.get("answer") == y_pred.get("answer"))
        >>> reward = RewardFunctionWrapper(fn=same_answer)
        >>> reward
        <RewardFunctionWrapper name=same_answer reduction=mean>
        >>> asyncio.run(reward({"answer": "4"}, {"answer": "4", "thinking": "2+2"}))
        1.0
    """
