"""The `Metric` base class: declared, exactly mergeable state (after Keras' `Metric`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from synaray.data import JsonDataModel
from synaray.errors import ConfigError, DataError
from synaray.metrics.metric_state import MetricState
from synaray.rewards.common import mask_sample, standardize_masks, standardize_pairs, to_snake_case

__all__ = ["Metric"]


class Metric:
    """Base class of metrics: statistics accumulated over samples, read with `result()`.

    A metric keeps sufficient statistics (counts, exact totals), never a stored ratio, so
    that states computed on different shards merge into exactly the state of one pass:
    `result()` after `merge_state` is equal (`==`) to the result of a single pass over all
    the data, for any split and any merge order.

    To write one, declare every piece of state in `__init__` with `add_state` (each with its
    aggregation, "sum" by default) and implement:

    - `async update_batch(y_true, y_pred)`: receives the samples as lists of masked
      `JsonDataModel`s (a prediction that failed is None) and accumulates into the states
      with `state.accumulate(value)`;
    - `result()`: reads only the states.

    `update_state`, `reset_state`, `merge_state`, `get_state` and `set_state` are generic.

    Attributes:
        direction: "up" if higher is better (the default), "down" otherwise; public, read by
            callbacks and trainers that keep the best program.

    Args:
        name: defaults to the snake-case class name.
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: field masks applied to both
            sides before `update_batch`, as in `synaray.rewards.Reward`.

    Example:
        >>> import asyncio
        >>> class AnswerCount(Metric):
        ...     def __init__(self, name=None, **masks):
        ...         super().__init__(name=name, **masks)
        ...         self.answered = self.add_state("answered", 0)
        ...     async def update_batch(self, y_true, y_pred):
        ...         self.answered.accumulate(sum(p is not None for p in y_pred))
        ...     def result(self):
        ...         return float(self.answered.value)
        >>> a, b, whole = AnswerCount(), AnswerCount(), AnswerCount()
        >>> asyncio.run(a.update_state([{"x": 1}], [{"x": 1}]))
        >>> asyncio.run(b.update_state([{"x": 2}], [None]))
        >>> a.merge_state(b); a.result(), a.get_state()
        (1.0, {'answered': 1})
    """

    direction: ClassVar[str] = "up"

    def __init__(self, name: str | None = None, in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"Invalid value for argument `name`. Received: {name!r}. "
                              "Expected a string or None.")
        if type(self).direction not in ("up", "down"):
            raise ConfigError(f"{type(self).__name__}.direction is {type(self).direction!r}; "
                              "expected 'up' or 'down'.")
        self.name = name or to_snake_case(type(self).__name__)
        masks = standardize_masks(in_mask, out_mask, in_mask_pattern, out_mask_pattern)
        self.in_mask = masks["in_mask"]
        self.out_mask = masks["out_mask"]
        self.in_mask_pattern = masks["in_mask_pattern"]
        self.out_mask_pattern = masks["out_mask_pattern"]
        self._states: dict[str, MetricState] = {}

    # --- state -------------------------------------------------------------------------
    def add_state(self, name: str, initial: Any = 0, aggregation: str = "sum",
                  dtype: str | None = None) -> MetricState:
        """Declare a piece of state (see `MetricState`) and return it.

        Args:
            name: unique within the metric; the key in `get_state()`.
            initial: value after reset: 0 (int count), 0.0 (exact float total), {} (a map of
                counts, such as per field), or None for a "max"/"min" state with no value yet.
            aggregation: "sum", "max" or "min"; used both to update and to merge.
            dtype: "int" or "float"; inferred from `initial` when None.
        """
        if name in self._states:
            raise ConfigError(f"Metric {self.name!r} already has a state named {name!r}.")
        state = MetricState(name, initial, aggregation=aggregation, dtype=dtype)
        self._states[name] = state
        return state

    @property
    def states(self) -> dict[str, MetricState]:
        """The declared states, by name."""
        return dict(self._states)

    def reset_state(self) -> None:
        """Set every state back to its initial value."""
        for state in self._states.values():
            state.reset()

    def get_state(self) -> dict[str, Any]:
        """The state as JSON: `{state_name: value}` (fractions as "num/den" strings)."""
        return {name: state.to_json() for name, state in self._states.items()}

    def _parse_state(self, data: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise ConfigError(f"Metric {self.name!r}: expected a state dict; received "
                              f"{type(data).__name__}.")
        missing, unknown = set(self._states) - set(data), set(data) - set(self._states)
        if missing or unknown:
            raise ConfigError(f"Metric {self.name!r} has states {sorted(self._states)}; the "
                              f"given state misses {sorted(missing)} and has unknown "
                              f"{sorted(unknown)}.")
        return {name: self._states[name].from_json(data[name]) for name in self._states}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Replace the state with one from `get_state()` (from this or another process)."""
        for name, value in self._parse_state(state).items():
            self._states[name].assign(value)

    def merge_state(self, other: Metric | Mapping[str, Any]) -> None:
        """Fold another metric's state (or a `get_state()` dict) into this one, exactly.

        Raises:
            ConfigError: if `other` is a metric of another class or with other states.
        """
        if isinstance(other, Metric):
            if type(other) is not type(self):
                raise ConfigError(f"Cannot merge a {type(other).__name__} into "
                                  f"{type(self).__name__} {self.name!r}.")
            other = other.get_state()
        for name, value in self._parse_state(other).items():
            self._states[name].accumulate(value)

    # --- updates -------------------------------------------------------------------------
    @property
    def masks(self) -> dict[str, Any]:
        return {"in_mask": self.in_mask, "out_mask": self.out_mask,
                "in_mask_pattern": self.in_mask_pattern, "out_mask_pattern": self.out_mask_pattern}

    def _prepare(self, y_true: Any, y_pred: Any) -> tuple[list[JsonDataModel],
                                                           list[JsonDataModel | None]]:
        owner = f"Metric {self.name!r}"
        trues, preds = standardize_pairs(y_true, y_pred, owner)
        masks = self.masks
        out_true: list[JsonDataModel] = []
        for i, t in enumerate(trues):
            sample = mask_sample(t, masks, owner, "y_true", i)
            if sample is None:
                raise DataError(f"{owner}: y_true of sample {i} is None; a ground truth is "
                                  "needed for every sample.")
            out_true.append(sample)
        out_pred = [mask_sample(p, masks, owner, "y_pred", i) for i, p in enumerate(preds)]
        return out_true, out_pred

    async def update_state(self, y_true: Any, y_pred: Any) -> None:
        """Accumulate one pair or two equal-length lists of samples (masks applied)."""
        trues, preds = self._prepare(y_true, y_pred)
        await self.update_batch(trues, preds)

    async def update_batch(self, y_true: list[JsonDataModel],
                           y_pred: list[JsonDataModel | None]) -> None:
        """Accumulate masked samples into the states; subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement `update_batch`.")

    def result(self) -> Any:
        """The metric's value, computed from the states only."""
        raise NotImplementedError(f"{type(self).__name__} must implement `result`.")

    async def __call__(self, y_true: Any, y_pred: Any) -> Any:
        """`update_state` then `result` (cumulative, as in Keras)."""
        await self.update_state(y_true, y_pred)
        return self.result()

    # --- config ------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON (state is separate: `get_state`)."""
        return {"name": self.name, **self.masks}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"
