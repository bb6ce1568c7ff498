"""One `ComponentRegistry` behind `rewards.get`, `metrics.get` and `optimizers.get`."""

from __future__ import annotations

import pytest

from synaray import metrics, optimizers, rewards
from synaray.component_registry import ComponentRegistry
from synaray.errors import ConfigError
from synaray.saving import register_synaray_serializable


@register_synaray_serializable(package="registry_tests")
class TinySearch(optimizers.RandomFewShot):
    """A registered optimizer subclass (found by its registered name)."""


def test_the_three_registries_are_one_class() -> None:
    assert rewards.ALL_OBJECTS_DICT is rewards.REGISTRY.names
    assert metrics.ALL_OBJECTS_DICT is metrics.REGISTRY.names
    assert optimizers.ALL_OBJECTS is optimizers.REGISTRY.names
    for module in (rewards, metrics, optimizers):
        assert isinstance(module.REGISTRY, ComponentRegistry)


def test_optimizers_accept_a_bare_config_dict_and_a_registered_name() -> None:
    search = optimizers.get({"class_name": "RandomFewShot", "config": {"nb_max_examples": 2}})
    assert type(search) is optimizers.RandomFewShot
    assert search.get_config()["nb_max_examples"] == 2
    assert type(optimizers.get("registry_tests>TinySearch")) is TinySearch


def test_an_optimizer_identifier_of_another_kind_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"optimizer identifier: 'exact_match'.*"
                                          r"random_few_shot"):
        optimizers.get("exact_match")
    with pytest.raises(ConfigError, match=r"optimizer identifier: <ExactMatch"):
        optimizers.get(rewards.ExactMatch())


def test_metrics_fall_back_to_reward_names_and_wrap_rewards() -> None:
    wrapped = metrics.get("token_f1")
    assert isinstance(wrapped, metrics.MeanMetricWrapper)
    assert isinstance(metrics.get(rewards.ExactMatch()), metrics.MeanMetricWrapper)
    with pytest.raises(ConfigError, match=r"metric identifier: 'nope'.*reward names"):
        metrics.get("nope")


def test_a_reward_function_is_wrapped_and_a_non_callable_refused() -> None:
    def same(y_true, y_pred):
        return float(y_true == y_pred)

    assert isinstance(rewards.get(same), rewards.RewardFunctionWrapper)
    with pytest.raises(ConfigError, match=r"reward identifier: 3\. Expected None, a reward "
                                          r"name .*a function\."):
        rewards.get(3)
