"""MetricState: aggregations, exact float totals, maps, JSON form, and bad values."""

from __future__ import annotations

from fractions import Fraction

import pytest

from synaray.errors import ConfigError, DataError
from synaray.metrics import MetricState


def test_float_sum_is_exact_and_order_free():
    a, b = MetricState("t", 0.0), MetricState("t", 0.0)
    for v in (1e16, 1.0, -1e16, 0.1):
        a.accumulate(v)
    for v in (0.1, -1e16, 1.0, 1e16):
        b.accumulate(v)
    assert a.value == b.value == Fraction(1) + Fraction(0.1)
    assert a.to_json() == b.to_json()
    assert a.from_json(a.to_json()) == a.value


def test_int_sum_map_and_reset():
    counts = MetricState("tp", {})
    counts.accumulate({"answer": 2})
    counts.accumulate({"answer": 1, "label": 4})
    assert counts.value == {"answer": 3, "label": 4}
    assert counts.to_json() == {"answer": 3, "label": 4}
    counts.reset()
    assert counts.value == {}


@pytest.mark.parametrize(("aggregation", "expected"), [("max", 7), ("min", -2)])
def test_max_and_min_with_no_initial_value(aggregation, expected):
    state = MetricState("m", None, aggregation=aggregation, dtype="int")
    for v in (3, 7, -2):
        state.accumulate(v)
    assert state.value == expected
    state.reset()
    assert state.value is None and state.to_json() is None


def test_float_map_json_uses_fraction_strings():
    state = MetricState("m", {}, dtype="float")
    state.accumulate({"a": 0.5, "b": 1})
    assert state.to_json() == {"a": "1/2", "b": "1/1"}
    assert state.from_json({"a": "1/2", "b": 1.0}) == {"a": Fraction(1, 2), "b": Fraction(1)}


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"initial": 0, "aggregation": "mean"}, "aggregation"),
    ({"initial": 0, "dtype": "str"}, "dtype"),
    ({"initial": None}, "sum"),
])
def test_bad_declarations(kwargs, argument):
    with pytest.raises(ConfigError, match=argument):
        MetricState("s", **kwargs)


@pytest.mark.parametrize(("initial", "value"), [
    (0, 0.5), (0, "1"), (0, True), (0.0, float("nan")), (0.0, float("inf")), ({}, 3),
])
def test_bad_values(initial, value):
    with pytest.raises(DataError, match="'s'"):
        MetricState("s", initial).accumulate(value)


def test_bad_json_fraction():
    with pytest.raises(DataError, match="not a fraction"):
        MetricState("s", 0.0).from_json("one half")
