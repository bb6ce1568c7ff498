"""`MetricState`: one declared piece of a metric's state, which merges exactly.

Why exact: "merging the states of any split of the data gives exactly the result of one
pass". Float sums taken in a different order differ in the last bits, so float totals are
kept as `fractions.Fraction` (every float converts to one exactly, and rational addition is
associative and commutative); counts are Python ints. The JSON form of a fraction is the
string "numerator/denominator". A result is computed from these exact values and rounded
once, so one pass and any merge of any split give the same float.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Integral, Rational, Real
from typing import Any

from synaray.errors import ConfigError, DataError

__all__ = ["AGGREGATIONS", "DTYPES", "MetricState"]

AGGREGATIONS = ("sum", "max", "min")
DTYPES = ("int", "float")


def _combine(a: Any, b: Any, aggregation: str) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if aggregation == "sum":
        return a + b
    return max(a, b) if aggregation == "max" else min(a, b)


class MetricState:
    """A scalar or a `{key: scalar}` map of ints or exact floats, with its aggregation.

    Args:
        name: the state's name (a key of `Metric.get_state()`).
        initial: the value after `reset`: a number, None (no value yet; only for "max" and
            "min"), or `{}` (a map, such as per-field counts).
        aggregation: how two values combine, on update and on merge: "sum", "max", "min".
            Maps combine key by key.
        dtype: "int" (Python ints) or "float" (kept exactly as fractions); inferred from
            `initial` when None (ints and `{}` give "int").

    Example:
        >>> total = MetricState("total", 0.0)
        >>> for value in (1e16, 1.0, -1e16):
        ...     total.accumulate(value)
        >>> float(total.value), 1e16 + 1.0 - 1e16, total.to_json()
        (1.0, 0.0, '1/1')
    """

    def __init__(self, name: str, initial: Any, aggregation: str = "sum",
                 dtype: str | None = None) -> None:
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"Invalid value for argument `aggregation` of state {name!r}. "
                              f"Received: {aggregation!r}. Expected one of {AGGREGATIONS}.")
        if dtype is None:
            dtype = "float" if isinstance(initial, (float, Fraction)) else "int"
        if dtype not in DTYPES:
            raise ConfigError(f"Invalid value for argument `dtype` of state {name!r}. "
                              f"Received: {dtype!r}. Expected one of {DTYPES}.")
        if initial is None and aggregation == "sum":
            raise ConfigError(f"State {name!r}: a 'sum' state needs a numeric initial value "
                              "(such as 0 or 0.0) or {}.")
        self.name = name
        self.aggregation = aggregation
        self.dtype = dtype
        self.is_map = isinstance(initial, dict)
        self._initial = self._convert(initial)
        self.value: Any = self._copy(self._initial)

    # --- values --------------------------------------------------------------------------
    def _scalar(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Real):
            raise DataError(f"State {self.name!r} takes numbers; received {value!r} of type "
                            f"{type(value).__name__}.")
        if self.dtype == "int":
            if not isinstance(value, Integral):
                raise DataError(f"State {self.name!r} holds ints; received {value!r}.")
            return int(value)
        if isinstance(value, Rational):
            return Fraction(value)
        if not math.isfinite(float(value)):
            raise DataError(f"State {self.name!r} received {value!r}; expected a finite number "
                            "(not NaN or infinity).")
        return Fraction(float(value))

    def _convert(self, value: Any) -> Any:
        if self.is_map:
            if not isinstance(value, dict):
                raise DataError(f"State {self.name!r} is a map; received {value!r}.")
            return {str(k): self._scalar(v) for k, v in value.items()}
        return self._scalar(value)

    def _copy(self, value: Any) -> Any:
        return dict(value) if self.is_map else value

    # --- updates -------------------------------------------------------------------------
    def assign(self, value: Any) -> None:
        """Replace the value."""
        self.value = self._convert(value)

    def accumulate(self, value: Any) -> None:
        """Combine `value` into the state with the state's aggregation (key by key for maps)."""
        value = self._convert(value)
        if not self.is_map:
            self.value = _combine(self.value, value, self.aggregation)
            return
        for key, v in value.items():
            self.value[key] = _combine(self.value.get(key), v, self.aggregation)

    def reset(self) -> None:
        self.value = self._copy(self._initial)

    # --- JSON ----------------------------------------------------------------------------
    def _scalar_json(self, value: Any) -> Any:
        if isinstance(value, Fraction):
            return f"{value.numerator}/{value.denominator}"
        return value

    def _scalar_from_json(self, value: Any) -> Any:
        if self.dtype == "float" and isinstance(value, str):
            try:
                return Fraction(value)
            except (ValueError, ZeroDivisionError) as exc:
                raise DataError(f"State {self.name!r}: {value!r} is not a fraction "
                                "'numerator/denominator'.") from exc
        return self._scalar(value)

    def to_json(self) -> Any:
        """The value as JSON (fractions as "numerator/denominator" strings)."""
        if self.is_map:
            return {k: self._scalar_json(v) for k, v in sorted(self.value.items())}
        return self._scalar_json(self.value)

    def from_json(self, data: Any) -> Any:
        """Parse a value written by `to_json` (does not change the state)."""
        if self.is_map:
            if not isinstance(data, dict):
                raise DataError(f"State {self.name!r} is a map; received {data!r}.")
            return {str(k): self._scalar_from_json(v) for k, v in data.items()}
        return self._scalar_from_json(data)

    def __repr__(self) -> str:
        return f"<MetricState name={self.name} aggregation={self.aggregation} dtype={self.dtype}>"
