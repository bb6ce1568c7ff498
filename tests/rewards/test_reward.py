"""The Reward base class: reductions, batching, missing predictions, validation, masks."""

from __future__ import annotations

import asyncio
import math

import pytest

import synaray
from synaray.data import JsonDataModel
from synaray.errors import ConfigError, DataError
from synaray.rewards import Reward, reduce_values, standardize_reduction

VALUES = [0.2, 0.5, 1.0]


class ValueReward(Reward):
    """Returns the prediction's `v` field; records what `call` received."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[tuple[dict, dict]] = []

    async def call(self, y_true, y_pred):
        self.seen.append((y_true.get_json(), y_pred.get_json()))
        return y_pred.get("v")


def _batch(values):
    return [{"v": 0.0}] * len(values), [{"v": v} for v in values]


@pytest.mark.parametrize(("reduction", "expected"), [
    ("min", 0.2),
    ("max", 1.0),
    ("sum", math.fsum(VALUES)),
    ("mean", math.fsum(VALUES) / 3),
    ("none", VALUES),
    (None, VALUES),
])
async def test_reductions_on_hand_values(reduction, expected):
    reward = ValueReward(reduction=reduction)
    assert await reward(*_batch(VALUES)) == expected


def test_sum_of_hand_values_is_1_7():
    assert reduce_values(VALUES, "sum") == 1.7


@pytest.mark.parametrize("reduction", ["mean", "sum", "min", "max", "none", None])
async def test_empty_batch_reduces_to_zero(reduction):
    assert await ValueReward(reduction=reduction)([], []) == 0.0


def test_bad_reduction_lists_allowed_values():
    with pytest.raises(ConfigError) as info:
        ValueReward(reduction="median")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "median" in message
    for allowed in ("'mean'", "'sum'", "'min'", "'max'", "'none'", "None"):
        assert allowed in message
    with pytest.raises(ConfigError):
        standardize_reduction(["mean"])


async def test_single_pair_gives_a_float_whatever_the_reduction():
    for reduction in ("mean", "none", None, "sum"):
        assert await ValueReward(reduction=reduction)({"v": 0}, {"v": 0.5}) == 0.5


async def test_compute_elementwise_is_unreduced_and_in_order():
    reward = ValueReward(reduction="max")
    assert await reward.compute_elementwise(*_batch([0.3, 0.1, 0.9])) == [0.3, 0.1, 0.9]


async def test_missing_prediction_scores_zero_without_call_and_is_counted():
    reward = ValueReward(reduction="none")
    values = await reward([{"v": 0}, {"v": 0}, {"v": 0}], [{"v": 0.5}, None, {"v": 0.7}])
    assert values == [0.5, 0.0, 0.7]
    assert len(reward.seen) == 2
    assert reward.missing_predictions == 1
    assert await reward({"v": 0}, None) == 0.0
    assert reward.missing_predictions == 2
    reward.reset_counters()
    assert reward.missing_predictions == 0


async def test_missing_ground_truth_is_an_error():
    with pytest.raises(DataError, match="y_true of sample 1 is None"):
        await ValueReward()([{"v": 0}, None], [{"v": 1}, {"v": 1}])


async def test_mismatched_batch_is_an_error():
    with pytest.raises(DataError, match="2 samples but `y_pred` has 1"):
        await ValueReward()([{"v": 0}, {"v": 0}], [{"v": 1}])
    with pytest.raises(DataError, match="both be single samples or both lists"):
        await ValueReward()({"v": 0}, [{"v": 1}])


@pytest.mark.parametrize("bad", ["high", None, float("nan"), float("inf"), [1.0]])
async def test_bad_values_name_the_reward_and_the_index(bad):
    reward = ValueReward(name="my_reward")
    with pytest.raises(DataError) as info:
        await reward([{"v": 0}] * 3, [{"v": 1.0}, {"v": 0.5}, {"v": bad}])
    assert "'my_reward'" in str(info.value)
    assert "sample 2" in str(info.value)


async def test_numpy_object_arrays_are_batches():
    import numpy as np

    y_pred = np.empty(2, dtype=object)
    y_pred[:] = [{"v": 0.25}, None]
    reward = ValueReward(reduction="none")
    assert await reward([{"v": 0}, {"v": 0}], y_pred) == [0.25, 0.0]


async def test_booleans_and_numpy_numbers_are_accepted():
    import numpy as np

    reward = ValueReward(reduction="none")
    assert await reward([{"v": 0}] * 2, [{"v": True}, {"v": np.float32(0.5)}]) == [1.0, 0.5]


async def test_async_calls_of_a_batch_run_concurrently():
    class Slow(Reward):
        active = peak = 0

        async def call(self, y_true, y_pred):
            Slow.active += 1
            Slow.peak = max(Slow.peak, Slow.active)
            await asyncio.sleep(0.01)
            Slow.active -= 1
            return 1.0

    assert await Slow()([{}] * 5, [{}] * 5) == 1.0
    assert Slow.peak == 5


async def test_sync_call_is_accepted():
    class Sync(Reward):
        def call(self, y_true, y_pred):
            return float(y_true == y_pred)

    assert await Sync(reduction="none")([{"a": 1}, {"a": 1}], [{"a": 1}, {"a": 2}]) == [1.0, 0.0]


async def test_masks_apply_to_both_sides():
    reward = ValueReward(in_mask=["v", "answer"], out_mask=["answer"])
    await reward({"v": 0, "answer": "x", "thinking": "t"},
                 {"v": 1, "answer": "y", "thinking": "u"})
    assert reward.seen == [({"v": 0}, {"v": 1})]
    reward = ValueReward(in_mask_pattern="^v$|^think")
    await reward({"v": 0, "answer": "x", "thinking": "t"}, {"v": 1, "answer": "y"})
    assert reward.seen == [({"v": 0, "thinking": "t"}, {"v": 1})]


async def test_accepts_data_models_and_json_data_models():
    class Out(synaray.DataModel):
        v: float

    reward = ValueReward()
    assert await reward(Out(v=0.0), JsonDataModel(json={"v": 0.25})) == 0.25
    assert await reward(Out(v=0.0), Out(v=0.75)) == 0.75
    with pytest.raises(DataError, match="y_pred sample 0"):
        await reward({"v": 0}, "not json")


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"in_mask": 3}, "in_mask"),
    ({"out_mask": [1]}, "out_mask"),
    ({"in_mask_pattern": "("}, "in_mask_pattern"),
    ({"name": 5}, "name"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ConfigError, match=f"`{argument}`"):
        ValueReward(**kwargs)


def test_a_string_mask_is_a_one_field_list():
    assert ValueReward(in_mask="answer").in_mask == ["answer"]


def test_repr_is_keras_style():
    assert repr(ValueReward()) == "<ValueReward name=value_reward reduction=mean>"
    assert repr(ValueReward(name="r", reduction=None)) == "<ValueReward name=r reduction=None>"


async def test_base_call_is_abstract():
    with pytest.raises(NotImplementedError):
        await Reward()({}, {})
