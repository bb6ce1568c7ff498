"""Rewards: per-sample scores of a prediction against its ground truth (higher is better).

`get(identifier)` turns what `program.compile(reward=...)` receives into a `Reward`.
"""

from __future__ import annotations

from typing import Any

from synaray.component_registry import ComponentRegistry
from synaray.rewards.batch_reward import BatchReward, BatchRewardFunctionWrapper
from synaray.rewards.cosine_similarity import CosineSimilarity
from synaray.rewards.exact_match import ExactMatch, exact_match
from synaray.rewards.lm_as_judge import LMAsJudge
from synaray.rewards.program_as_judge import ProgramAsJudge
from synaray.rewards.reward import Reward, reduce_values, standardize_reduction
from synaray.rewards.reward_wrappers import RewardFunctionWrapper
from synaray.rewards.token_f1 import TokenF1, token_f1_reward

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
# Plain functions are wrapped in `RewardFunctionWrapper`.
REGISTRY = ComponentRegistry(
    "reward", Reward, ALL_OBJECTS, module=__name__,
    aliases={"f1_score": TokenF1, "f1": TokenF1},
    wrap=lambda fn: RewardFunctionWrapper(fn=fn),
    expected="a Reward class or instance, or a function")
ALL_OBJECTS_DICT: dict[str, type[Reward]] = REGISTRY.names


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
    return REGISTRY.get(identifier)


#: `serialize(component)` / `deserialize(config, custom_objects=None)`: see ComponentRegistry.
serialize = REGISTRY.serialize
deserialize = REGISTRY.deserialize
