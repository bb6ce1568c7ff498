"""BatchReward: one reward per sample, validation, and invariance to sharding."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers.config_roundtrip import assert_config_round_trip

import synaray as synalinks
from synaray.errors import DataError
from synaray.rewards import BatchReward, BatchRewardFunctionWrapper
from synaray.rewards.common import token_f1
from synaray.saving import register_synaray_serializable


# The example of the reference page, unchanged.
async def my_batch_reward(y_true, y_pred):
    # y_true, y_pred: list[JsonDataModel] of length batch_size
    return [1.0 if t.get_json() == p.get_json() else 0.0
            for t, p in zip(y_true, y_pred)]  # noqa: B905 (the reference code, verbatim)


@register_synaray_serializable(package="synaray_tests")
def centred_f1(y_true, y_pred):
    """Group-relative: each sample's token F1 minus the batch mean (fsum: order-free)."""
    scores = [token_f1(str(t.get("answer")), str(p.get("answer")))
              for t, p in zip(y_true, y_pred, strict=True)]
    mean = math.fsum(scores) / len(scores)
    return [s - mean for s in scores]


class RankReward(BatchReward):
    """Group-relative: the rank of each answer's length in the batch, scaled to [0, 1]."""

    def call(self, y_true, y_pred):
        keys = [(len(str(p.get("answer"))), str(p.get("answer"))) for p in y_pred]
        order = sorted(set(keys))
        top = max(len(order) - 1, 1)
        return [order.index(k) / top for k in keys]


async def test_reference_example_returns_one_reward_per_sample():
    reward = synalinks.rewards.BatchRewardFunctionWrapper(fn=my_batch_reward)
    y_true = [{"answer": "4"}, {"answer": "5"}, {"answer": "6"}]
    y_pred = [{"answer": "4"}, {"answer": "0"}, {"answer": "6"}]
    assert await reward.compute_batch(y_true, y_pred) == [1.0, 0.0, 1.0]
    assert await reward(y_true, y_pred) == 2 / 3
    assert repr(reward) == "<BatchRewardFunctionWrapper name=my_batch_reward reduction=mean>"


async def test_single_pair_is_a_batch_of_one():
    reward = BatchRewardFunctionWrapper(fn=my_batch_reward)
    assert await reward({"answer": "4"}, {"answer": "4"}) == 1.0


async def test_missing_predictions_are_left_out_and_score_zero():
    seen = []

    def fn(y_true, y_pred):
        seen.append(len(y_pred))
        return [1.0] * len(y_pred)

    reward = BatchRewardFunctionWrapper(fn=fn, reduction="none")
    assert await reward([{}] * 4, [{}, None, {}, None]) == [1.0, 0.0, 1.0, 0.0]
    assert seen == [2]
    assert reward.missing_predictions == 2


@pytest.mark.parametrize(("returned", "message"), [
    ([1.0, 1.0], "returned 2 values for a batch of 3 samples; sample 2 has no value"),
    ([1.0] * 4, "returned 4 values for a batch of 3 samples; value at index 3"),
    ([1.0, "good", 1.0], "for sample 1; expected a number"),
    ([1.0, 1.0, float("nan")], "returned nan for sample 2"),
    (0.5, "expected a list with one number per sample"),
])
async def test_bad_batch_output_names_reward_and_index(returned, message):
    reward = BatchRewardFunctionWrapper(fn=lambda t, p: returned, name="bad_batch")
    with pytest.raises(DataError) as info:
        await reward.compute_batch([{}] * 3, [{}] * 3)
    assert "'bad_batch'" in str(info.value)
    assert message in str(info.value)


async def test_index_is_the_original_sample_index_when_predictions_are_missing():
    reward = BatchRewardFunctionWrapper(fn=lambda t, p: [1.0, float("nan")], name="r")
    with pytest.raises(DataError, match="sample 2"):
        await reward.compute_batch([{}] * 3, [{}, None, {}])


async def test_compute_elementwise_is_compute_batch():
    reward = RankReward()
    y_true = [{"answer": ""}] * 3
    y_pred = [{"answer": "ccc"}, {"answer": "a"}, {"answer": "bb"}]
    assert await reward.compute_elementwise(y_true, y_pred) == [1.0, 0.0, 0.5]
    assert await reward.compute_batch(y_true, y_pred) == [1.0, 0.0, 0.5]


def test_config_round_trip():
    assert_config_round_trip(BatchRewardFunctionWrapper(fn=centred_f1, reduction="max",
                                                        in_mask=["answer"]))
    assert_config_round_trip(RankReward(reduction="min"))


WORDS = ["the", "cat", "sat", "down", "a", "dog", "ran", "Paris", "4", "five"]
answers = st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join)
examples = st.lists(st.tuples(answers, answers), min_size=1, max_size=24)


async def _sharded_then_gathered(reward, y_true, y_pred, n_shards, rng):
    """What an engine does: predictions come back by shard, in any order; the batch is
    rebuilt by example id and the reward runs once on it."""
    ids = list(range(len(y_true)))
    rng.shuffle(ids)
    shards = [ids[i::n_shards] for i in range(n_shards)]
    rng.shuffle(shards)  # completion order
    gathered = {i: (y_true[i], y_pred[i]) for shard in shards for i in shard}
    order = sorted(gathered)
    values = await reward.compute_batch([gathered[i][0] for i in order],
                                        [gathered[i][1] for i in order])
    return dict(zip(order, values, strict=True))


@settings(max_examples=60, deadline=None)
@given(examples, st.integers(1, 8), st.randoms(use_true_random=False))
def test_group_relative_rewards_do_not_depend_on_sharding_or_order(data, n_shards, rng):
    import asyncio

    y_true = [{"answer": t} for t, _ in data]
    y_pred = [{"answer": p} for _, p in data]
    for reward in (BatchRewardFunctionWrapper(fn=centred_f1), RankReward()):
        one_pass = asyncio.run(reward.compute_batch(y_true, y_pred))
        by_id = asyncio.run(_sharded_then_gathered(reward, y_true, y_pred, n_shards, rng))
        assert [by_id[i] for i in range(len(data))] == one_pass
        # The batch in another order, re-ordered back: the same value for every sample.
        perm = list(range(len(data)))
        random.Random(n_shards).shuffle(perm)
        shuffled = asyncio.run(reward.compute_batch([y_true[i] for i in perm],
                                                    [y_pred[i] for i in perm]))
        back = [0.0] * len(data)
        for position, i in enumerate(perm):
            back[i] = shuffled[position]
        assert back == one_pass
