"""Sum, Mean and MeanMetricWrapper."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip
from tests.rewards.fakes import FakeJudgeLM

from synaray.errors import ConfigError, DataError
from synaray.metrics import Mean, MeanMetricWrapper, Sum
from synaray.rewards import ExactMatch, LMAsJudge, TokenF1
from synaray.saving import register_synaray_serializable


@register_synaray_serializable(package="synaray_tests")
def answer_length_ratio(y_true, y_pred, cap=1.0):
    return min(cap, len(y_pred.get("answer", "")) / max(1, len(y_true.get("answer", ""))))


@register_synaray_serializable(package="synaray_tests")
async def async_exact(y_true, y_pred):
    return float(y_true.get_json() == y_pred.get_json())


async def test_sum_and_mean():
    s, m = Sum(), Mean()
    for metric in (s, m):
        await metric.update_state([1, 3, 5, 7])
        await metric.update_state(np.array([[0.5], [0.5]]))
        await metric.update_state(2)
    assert s.result() == 19.0
    assert m.result() == 19.0 / 7
    assert Mean().result() == 0.0 and Sum().result() == 0.0


async def test_mean_is_exact_where_a_float_sum_is_not():
    m = Mean()
    await m.update_state([1e16, 1.0, -1e16, 1.0])
    assert m.result() == 0.5
    assert (1e16 + 1.0 - 1e16 + 1.0) / 4 != 0.5


async def test_non_finite_values_are_refused():
    with pytest.raises(DataError, match=r"'mean'.*sample 1"):
        await Mean().update_state([1.0, float("nan")])


async def test_wrapping_a_reward():
    m = MeanMetricWrapper(TokenF1(), in_mask=["answer"])
    assert m.name == "token_f1"
    await m.update_state([{"answer": "cat sat down"}, {"answer": "x"}],
                         [{"answer": "The cat sat.", "thinking": "t"}, None])
    assert m.result() == 0.4
    assert MeanMetricWrapper(ExactMatch).name == "exact_match"


async def test_wrapping_sync_and_async_functions():
    m = MeanMetricWrapper(answer_length_ratio, cap=0.5)
    await m.update_state([{"answer": "abcd"}, {"answer": "ab"}], [{"answer": "a"}, None])
    assert m.result() == (0.25 + 0.0) / 2
    a = MeanMetricWrapper(async_exact, name="exact")
    await a.update_state([{"x": 1}, {"x": 2}], [{"x": 1}, {"x": 3}])
    assert a.result() == 0.5 and a.name == "exact"


async def test_wrapping_an_lm_judge():
    m = MeanMetricWrapper(LMAsJudge(language_model=FakeJudgeLM(score=4), scale=(1, 5)))
    await m.update_state([{"a": 1}], [{"a": 1}])
    assert m.result() == 0.75


def test_bad_arguments():
    with pytest.raises(ConfigError, match="`fn`"):
        MeanMetricWrapper(fn=3)
    with pytest.raises(ConfigError, match="only passed to a plain function"):
        MeanMetricWrapper(ExactMatch(), cap=1)


def test_configs():
    assert Mean(name="m").get_config() == {"name": "m"}
    rebuilt = assert_config_round_trip(MeanMetricWrapper(answer_length_ratio, cap=0.5,
                                                         out_mask=["thinking"]))
    assert rebuilt.fn is answer_length_ratio and rebuilt.fn_kwargs == {"cap": 0.5}
    rebuilt = assert_config_round_trip(MeanMetricWrapper(ExactMatch(reduction="max")))
    assert isinstance(rebuilt.fn, ExactMatch) and rebuilt.fn.reduction == "max"
