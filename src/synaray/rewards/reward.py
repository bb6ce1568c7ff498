"""The `Reward` base class, its reductions and the per-sample evaluation loop.

A reward compares a prediction with its ground truth and returns a float per sample,
usually in [0, 1] (higher is better). As Keras' `Loss`, the base class does the work that
every reward shares (conversion to `JsonDataModel`, field masks, missing predictions,
validation, reduction) and a subclass writes only `call(y_true, y_pred)`.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Sequence
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError, DataError
from synaray.rewards.common import (
    check_value,
    is_batch,
    mask_sample,
    mean_of,
    standardize_masks,
    standardize_pairs,
    to_snake_case,
)

__all__ = ["REDUCTIONS", "Reward", "reduce_values", "standardize_reduction"]

REDUCTIONS: tuple[str | None, ...] = ("mean", "sum", "min", "max", "none", None)


def standardize_reduction(reduction: Any) -> str | None:
    """Check a `reduction` argument.

    Raises:
        ConfigError: (a ValueError) listing the allowed values.

    Example:
        >>> standardize_reduction("max")
        'max'
    """
    if not (reduction is None or isinstance(reduction, str)) or reduction not in REDUCTIONS:
        raise ConfigError(
            f"Invalid value for argument `reduction`. Received: reduction={reduction!r}. "
            "Expected one of 'mean', 'sum', 'min', 'max', 'none' or None."
        )
    return reduction


def reduce_values(values: Sequence[float], reduction: str | None = "mean") -> float | list[float]:
    """Reduce per-sample values; an empty batch gives 0.0 whatever the reduction.

    "mean" and "sum" use `math.fsum`, so the result does not depend on the sample order.
    "none" and None return the values as a list.

    Example:
        >>> reduce_values([0.2, 0.5, 1.0], "min"), reduce_values([0.2, 0.5, 1.0], "sum")
        (0.2, 1.7)
    """
    reduction = standardize_reduction(reduction)
    values = [float(v) for v in values]
    if not values:
        return 0.0
    if reduction in (None, "none"):
        return values
    if reduction == "min":
        return min(values)
    if reduction == "max":
        return max(values)
    if reduction == "sum":
        return math.fsum(values)
    return mean_of(values)


class Reward:
    """Base class of rewards: compare `y_pred` with `y_true`, one float per sample.

    Subclasses write `call(y_true, y_pred)` for one sample (async or not); it receives two
    masked `JsonDataModel`s and returns a number. The base class:

    - accepts one pair or two equal-length lists of samples (`JsonDataModel`, `DataModel`,
      dict, or None for a prediction that failed);
    - applies the masks to both sides (`in_mask`, then `out_mask`, at every level);
    - scores a missing prediction (None) 0.0 without calling `call`, and counts it in
      `missing_predictions`;
    - runs `call` for the samples of a batch concurrently (asyncio.gather);
    - checks each value is a finite number and reduces with `reduction`.

    Args:
        name: name of the reward; defaults to the snake-case class name.
        reduction: how `__call__` reduces a batch: "mean" (default), "sum", "min", "max",
            or "none"/None (return the per-sample list). Per-sample values are always
            available unreduced from `compute_elementwise`.
        in_mask: field names to keep (matched on their base form, at every level).
        out_mask: field names to drop.
        in_mask_pattern: regex; matching fields are kept (OR-ed with `in_mask`).
        out_mask_pattern: regex; matching fields are dropped (OR-ed with `out_mask`).

    Raises:
        ConfigError: for an unknown reduction or a malformed mask.

    Example:
        >>> import asyncio
        >>> class LengthMatch(Reward):
        ...     def call(self, y_true, y_pred):
        ...         return float(len(y_true["answer"]) == len(y_pred["answer"]))
        >>> reward = LengthMatch(in_mask=["answer"])
        >>> reward
        <LengthMatch name=length_match reduction=mean>
        >>> asyncio.run(reward([{"answer": "abc"}, {"answer": "ab"}],
        ...                    [{"answer": "xyz"}, None]))
        0.5
        >>> reward.missing_predictions
        1
    """

    def __init__(self, name: str | None = None, reduction: str | None = "mean",
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"Invalid value for argument `name`. Received: {name!r}. "
                              "Expected a string or None.")
        self.name = name or to_snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        masks = standardize_masks(in_mask, out_mask, in_mask_pattern, out_mask_pattern)
        self.in_mask = masks["in_mask"]
        self.out_mask = masks["out_mask"]
        self.in_mask_pattern = masks["in_mask_pattern"]
        self.out_mask_pattern = masks["out_mask_pattern"]
        self.missing_predictions = 0

    # --- what subclasses write -------------------------------------------------------------
    async def call(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> float:
        """The reward of one sample (both sides already converted and masked)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `call(y_true, y_pred)`.")

    async def _call_batch(self, y_true: list[JsonDataModel],
                          y_pred: list[JsonDataModel]) -> Any:
        """Values for the present (non-missing) samples; `BatchReward` overrides this."""

        async def one(t: JsonDataModel, p: JsonDataModel) -> Any:
            value = self.call(t, p)
            return await value if inspect.isawaitable(value) else value

        return await asyncio.gather(*(one(t, p) for t, p in zip(y_true, y_pred, strict=True)))

    # --- public API --------------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, Any]:
        """The mask arguments, as `JsonDataModel.masked` takes them."""
        return {"in_mask": self.in_mask, "out_mask": self.out_mask,
                "in_mask_pattern": self.in_mask_pattern, "out_mask_pattern": self.out_mask_pattern}

    async def __call__(self, y_true: Any, y_pred: Any) -> float | list[float]:
        """The reduced reward of one pair, or of two equal-length lists of samples.

        A single pair gives a float whatever the reduction; a batch with reduction
        "none"/None gives the list of per-sample values; an empty batch gives 0.0.
        """
        single = not is_batch(y_true)
        values = await self.compute_elementwise(y_true, y_pred)
        if single:
            return values[0]
        return reduce_values(values, self.reduction)

    async def compute_elementwise(self, y_true: Any, y_pred: Any) -> list[float]:
        """Per-sample values, unreduced and in input order (what engines call).

        Raises:
            DataError: for a missing ground truth, mismatched lengths, or a value that is
                not a finite number (the message names the reward and the sample index).
        """
        owner = f"Reward {self.name!r}"
        trues, preds = standardize_pairs(y_true, y_pred, owner)
        masks = self.masks
        present: list[int] = []
        for i, (t, p) in enumerate(zip(trues, preds, strict=True)):
            if t is None:
                raise DataError(f"{owner}: y_true of sample {i} is None; a ground truth is "
                                "needed for every sample.")
            trues[i] = mask_sample(t, masks, owner, "y_true", i)
            preds[i] = mask_sample(p, masks, owner, "y_pred", i)
            if preds[i] is not None:
                present.append(i)
        self.missing_predictions += len(trues) - len(present)
        values = [0.0] * len(trues)
        if present:
            raw = await self._call_batch([trues[i] for i in present],
                                         [preds[i] for i in present])
            for i, value in zip(present, self._check_length(raw, present), strict=True):
                values[i] = check_value(value, owner, i)
        return values

    def _check_length(self, raw: Any, present: list[int]) -> list[Any]:
        if isinstance(raw, (str, bytes, dict)) or not hasattr(raw, "__len__"):
            raise DataError(f"Reward {self.name!r} returned {type(raw).__name__} for a batch "
                            f"of {len(present)} samples; expected a list with one number per "
                            "sample.")
        raw = list(raw)
        if len(raw) < len(present):
            raise DataError(
                f"Reward {self.name!r} returned {len(raw)} values for a batch of "
                f"{len(present)} samples; sample {present[len(raw)]} has no value.")
        if len(raw) > len(present):
            raise DataError(
                f"Reward {self.name!r} returned {len(raw)} values for a batch of "
                f"{len(present)} samples; value at index {len(present)} has no sample.")
        return raw

    def reset_counters(self) -> None:
        """Set `missing_predictions` (and subclass failure counters) back to 0."""
        self.missing_predictions = 0

    # --- config ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON."""
        return {"name": self.name, "reduction": self.reduction, **self.masks}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Reward:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name} reduction={self.reduction}>"
