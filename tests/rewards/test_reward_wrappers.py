"""RewardFunctionWrapper: sync and async functions, kwargs, saving by registered name."""

from __future__ import annotations

import json

import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip

from synaray import rewards
from synaray.errors import ConfigError
from synaray.rewards import RewardFunctionWrapper
from synaray.saving import deserialize_object, register_synaray_serializable, serialize_object


@register_synaray_serializable(package="my_project")
def starts_with(y_true, y_pred, prefix_length=1):
    return float(str(y_true.get("answer"))[:prefix_length]
                 == str(y_pred.get("answer"))[:prefix_length])


@register_synaray_serializable(package="my_project")
async def async_same_answer(y_true, y_pred):
    return float(y_true.get("answer") == y_pred.get("answer"))


async def test_sync_function_with_kwargs():
    reward = RewardFunctionWrapper(fn=starts_with, prefix_length=2, reduction="none")
    assert reward.name == "starts_with"
    assert await reward([{"answer": "Paris"}, {"answer": "Paris"}],
                        [{"answer": "Pa"}, {"answer": "P"}]) == [1.0, 0.0]


async def test_async_function():
    reward = RewardFunctionWrapper(async_same_answer, in_mask=["answer"])
    assert await reward({"answer": "4"}, {"answer": "4", "thinking": "..."}) == 1.0
    assert await reward({"answer": "4"}, None) == 0.0
    assert reward.missing_predictions == 1


def test_not_callable_is_refused():
    with pytest.raises(ConfigError, match="`fn`"):
        RewardFunctionWrapper(fn="exact_match")


def test_config_round_trip_with_kwargs():
    reward = RewardFunctionWrapper(fn=starts_with, prefix_length=3, reduction="max",
                                   in_mask=["answer"])
    config = reward.get_config()
    assert config["fn"]["registered_name"] == "my_project>starts_with"
    assert config["prefix_length"] == 3
    rebuilt = assert_config_round_trip(reward)
    assert rebuilt.fn is starts_with
    assert rebuilt.fn_kwargs == {"prefix_length": 3}


async def test_registered_custom_function_reloads_by_name():
    saved = json.dumps(rewards.serialize(RewardFunctionWrapper(async_same_answer)))
    # A config that only names the function (as in a saved program) finds it in the registry.
    config = json.loads(saved)
    config["config"]["fn"]["module"] = "module_that_does_not_exist"
    reward = rewards.get(config)
    assert isinstance(reward, RewardFunctionWrapper)
    assert reward.fn is async_same_answer
    assert await reward({"answer": "a"}, {"answer": "a"}) == 1.0
    by_name = rewards.get("my_project>async_same_answer")
    assert isinstance(by_name, RewardFunctionWrapper) and by_name.fn is async_same_answer


def test_unregistered_unimportable_function_gives_a_clear_error():
    def local_reward(y_true, y_pred):
        return 1.0

    config = serialize_object(RewardFunctionWrapper(local_reward))
    config["config"]["fn"]["module"] = "module_that_does_not_exist"
    with pytest.raises(ConfigError, match="register_synaray_serializable"):
        deserialize_object(config)


def test_lambda_cannot_be_saved():
    reward = RewardFunctionWrapper(lambda t, p: 1.0)
    assert reward.name == "<lambda>"
    with pytest.raises(ConfigError, match="lambda"):
        reward.get_config()
