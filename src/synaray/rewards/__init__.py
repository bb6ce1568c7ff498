"""Rewards: per-sample scores of a prediction against its ground truth (higher is better).

`get(identifier)` turns what `program.compile(reward=...)` receives into a `Reward`.
"""

from __future__ import annotations

import inspect
from typing import Any

from synaray.errors import ConfigError
from synaray.rewards.batch_reward import BatchReward, BatchRewardFunctionWrapper
from synaray.rewards.common import to_snake_case
from synaray.rewards.cosine_similarity import CosineSimilarity
from synaray.rewards.exact_match import ExactMatch, exact_match
from synaray.rewards.lm_as_judge import LMAsJudge
from synaray.rewards.program_as_judge import ProgramAsJudge
from synaray.rewards.reward import Reward, reduce_values, standardize_reduction
from synaray.rewards.reward_wrappers import RewardFunctionWrapper
from synaray.rewards.token_f1 import TokenF1, token_f1_reward
from synaray.saving import deserialize_object, get_registered_object, serialize_object

__all__ = [
    "ALL_OBJECTS",
    "ALL_OBJECTS_DICT",
    "BatchReward",
    "BatchRewardFunctionWrapper",
    "CosineSimilarity",
    "ExactMatch",
    "LMAsJudge",
    "ProgramAsJudge",
    "Reward",
    "RewardFunctionWrapper",
    "TokenF1",
    "deserialize",
    "exact_match",
    "get",
    "reduce_values",
    "serialize",
    "standardize_reduction",
    "token_f1_reward",
]

ALL_OBJECTS: tuple[type[Reward], ...] = (
    Reward,
    RewardFunctionWrapper,
    BatchReward,
    BatchRewardFunctionWrapper,
    ExactMatch,
    CosineSimilarity,
    LMAsJudge,
    ProgramAsJudge,
    TokenF1,
)

# Class names, their snake-case forms, and aliases. "f1_score" names the per-sample
# token F1 when used as a reward (the built-in SQuAD task asks for it by that name).
ALL_OBJECTS_DICT: dict[str, type[Reward]] = {
    **{cls.__name__: cls for cls in ALL_OBJECTS},
    **{to_snake_case(cls.__name__): cls for cls in ALL_OBJECTS},
    "f1_score": TokenF1,
    "f1": TokenF1,
}


def serialize(reward: Reward) -> dict[str, Any]:
    """The `{module, class_name, config, registered_name}` description of a reward."""
    return serialize_object(reward)


def deserialize(config: dict[str, Any],
                custom_objects: dict[str, Any] | None = None) -> Reward:
    """Rebuild a reward from `serialize`'s output (or a `{"class_name", "config"}` dict).

    Plain functions are wrapped in `RewardFunctionWrapper`.
    """
    if isinstance(config, dict) and not config.get("module"):
        config = {**config, "module": __name__}  # a bare {"class_name", "config"} dict
    obj = deserialize_object(config, {**ALL_OBJECTS_DICT, **(custom_objects or {})})
    return _as_reward(obj, config)


def _as_reward(obj: Any, identifier: Any) -> Reward:
    if inspect.isclass(obj) and issubclass(obj, Reward):
        try:
            obj = obj()
        except (TypeError, ConfigError) as exc:
            raise ConfigError(f"Could not build reward {obj.__name__} from identifier "
                              f"{identifier!r} without arguments: {exc} Pass an instance "
                              "instead.") from exc
    if isinstance(obj, Reward):
        return obj
    if callable(obj) and not inspect.isclass(obj):
        return RewardFunctionWrapper(fn=obj)
    raise ConfigError(f"Could not interpret reward identifier: {identifier!r}. Expected None, "
                      f"a reward name (one of {sorted(ALL_OBJECTS_DICT)}), a config dict, a "
                      "Reward class or instance, or a function.")


def get(identifier: Any) -> Reward | None:
    """A `Reward` from an identifier, as `program.compile(reward=...)` accepts it.

    Args:
        identifier: None (returns None); a name such as "exact_match", "ExactMatch",
            "cosine_similarity", "token_f1" or a registered "package>name"; a config dict
            `{"class_name": ..., "config": ...}`; a `Reward` class (built without arguments)
            or instance (returned as is); or a function `fn(y_true, y_pred) -> float`
            (wrapped in `RewardFunctionWrapper`).

    Raises:
        ConfigError: "Could not interpret reward identifier ..." for anything else.

    Example:
        >>> get("exact_match")
        <ExactMatch name=exact_match reduction=mean>
        >>> get({"class_name": "ExactMatch", "config": {"in_mask": ["answer"]}}).in_mask
        ['answer']
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier) or get_registered_object(identifier)
        if obj is None:
            raise ConfigError(f"Could not interpret reward identifier: {identifier!r}. Known "
                              f"names: {sorted(ALL_OBJECTS_DICT)}, or a registered "
                              "'package>name'.")
        return _as_reward(obj, identifier)
    return _as_reward(identifier, identifier)
