"""`Sum`, `Mean` and `MeanMetricWrapper` (any reward or function as a metric)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError
from synaray.metrics.metric import Metric
from synaray.rewards.common import check_value
from synaray.rewards.reward import Reward
from synaray.rewards.reward_wrappers import function_name
from synaray.saving import deserialize_object, serialize_object

__all__ = ["Mean", "MeanMetricWrapper", "Sum"]


def _flat_values(values: Any) -> list[Any]:
    if hasattr(values, "tolist"):  # numpy arrays and scalars
        values = values.tolist()
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in _flat_values(item)]
    return [values]


def _exact_total(values: list[float]) -> Fraction:
    return sum((Fraction(v) for v in values), Fraction(0))


class Sum(Metric):
    """The exact sum of the given values (rounded once, in `result`).

    Example:
        >>> import asyncio
        >>> m = Sum()
        >>> asyncio.run(m.update_state([1, 3, 5, 7])); m.result()
        16.0
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.total = self.add_state("total", 0.0)

    async def update_state(self, values: Any) -> None:  # type: ignore[override]
        """Add a number, or every number of a (nested) list or array."""
        owner = f"Metric {self.name!r}"
        checked = [check_value(v, owner, i) for i, v in enumerate(_flat_values(values))]
        self.total.accumulate(_exact_total(checked))

    def result(self) -> float:
        return float(self.total.value)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class _ExactMean(Metric):
    """Shared state of `Mean` and `MeanMetricWrapper`: an exact total and a count."""

    def __init__(self, name: str | None = None, in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(name=name, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.total = self.add_state("total", 0.0)
        self.count = self.add_state("count", 0)

    def _add_values(self, values: list[float]) -> None:
        self.total.accumulate(_exact_total(values))
        self.count.accumulate(len(values))

    def result(self) -> float:
        """The mean, rounded once from the exact total; 0.0 before any value."""
        count = self.count.value
        return float(self.total.value / count) if count else 0.0


class Mean(_ExactMean):
    """The mean of the given values, from an exact total and an integer count.

    Example:
        >>> import asyncio
        >>> m = Mean()
        >>> asyncio.run(m.update_state([1, 3, 5, 7])); m.result()
        4.0
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)

    async def update_state(self, values: Any) -> None:  # type: ignore[override]
        """Add a number, or every number of a (nested) list or array."""
        owner = f"Metric {self.name!r}"
        self._add_values([check_value(v, owner, i)
                          for i, v in enumerate(_flat_values(values))])

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class MeanMetricWrapper(_ExactMean):
    """The mean over samples of a reward or of a function `fn(y_true, y_pred, **kwargs)`.

    With a `Reward`, its `compute_elementwise` gives the per-sample values (its own masks
    and missing-prediction rule apply). With a function (async or not), it is called per
    sample on the masked `JsonDataModel`s, and a missing prediction counts 0.0. The metric's
    own masks apply first in both cases. Per-sample values are summed exactly, so merged
    states give the one-pass mean. (A `BatchReward`'s values depend on the batch given to
    `update_state`, so for it the mean is per update batch.)

    Args:
        fn: a `Reward` instance or class, or a function returning a number.
        name: defaults to the reward's or the function's name.
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.
        **kwargs: JSON-serializable keyword arguments passed on to a function `fn`.

    Example:
        >>> import asyncio
        >>> from synaray.rewards import ExactMatch
        >>> m = MeanMetricWrapper(ExactMatch(), in_mask=["answer"])
        >>> m
        <MeanMetricWrapper name=exact_match>
        >>> asyncio.run(m([{"answer": "4"}, {"answer": "5"}], [{"answer": "4"}, None]))
        0.5
    """

    def __init__(self, fn: Any, name: str | None = None, in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None, **kwargs: Any) -> None:
        if inspect.isclass(fn) and issubclass(fn, Reward):
            fn = fn()
        if not callable(fn):
            raise ConfigError(f"Invalid value for argument `fn`. Received: {fn!r}. Expected a "
                              "Reward or a function fn(y_true, y_pred, **kwargs) -> float.")
        if isinstance(fn, Reward) and kwargs:
            raise ConfigError(f"MeanMetricWrapper got keyword arguments {sorted(kwargs)} for "
                              "a Reward; they are only passed to a plain function.")
        default = fn.name if isinstance(fn, Reward) else function_name(fn)
        super().__init__(name=name or default, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.fn: Callable[..., Any] = fn
        self.fn_kwargs = kwargs

    async def update_batch(self, y_true: list[JsonDataModel],
                           y_pred: list[JsonDataModel | None]) -> None:
        if isinstance(self.fn, Reward):
            values = await self.fn.compute_elementwise(y_true, y_pred)
        else:
            values = await asyncio.gather(*(self._one(t, p) for t, p in
                                            zip(y_true, y_pred, strict=True)))
        owner = f"Metric {self.name!r}"
        self._add_values([check_value(v, owner, i) for i, v in enumerate(values)])

    async def _one(self, y_true: JsonDataModel, y_pred: JsonDataModel | None) -> Any:
        if y_pred is None:
            return 0.0
        value = self.fn(y_true, y_pred, **self.fn_kwargs)
        return await value if inspect.isawaitable(value) else value

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fn": serialize_object(self.fn),
                **serialize_object(self.fn_kwargs)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MeanMetricWrapper:
        config = dict(config)
        fn = deserialize_object(config.pop("fn"))
        return cls(fn=fn, **{k: deserialize_object(v) for k, v in config.items()})
