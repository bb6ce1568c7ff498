"""rewards.get identifiers, and the config round trip of every reward class."""

from __future__ import annotations

import pickle

import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip
from tests.rewards.fakes import FakeEmbeddingModel, FakeJudgeLM, FakeJudgeProgram

from synaray import rewards
from synaray.errors import ConfigError
from synaray.rewards import (
    BatchReward,
    BatchRewardFunctionWrapper,
    CosineSimilarity,
    ExactMatch,
    LMAsJudge,
    ProgramAsJudge,
    Reward,
    RewardFunctionWrapper,
    TokenF1,
)
from synaray.saving import register_synaray_serializable


@register_synaray_serializable(package="synaray_tests")
def always_half(y_true, y_pred):
    return 0.5


@register_synaray_serializable(package="synaray_tests")
def batch_of_halves(y_true, y_pred):
    return [0.5] * len(y_pred)


MASKS = {"in_mask": ["answer", "label"], "out_mask": ["label"],
         "in_mask_pattern": "^ans", "out_mask_pattern": None}

EXAMPLES = {
    Reward: lambda: Reward(name="base", reduction="sum", **MASKS),
    RewardFunctionWrapper: lambda: RewardFunctionWrapper(always_half, reduction="none",
                                                         **MASKS),
    BatchReward: lambda: BatchReward(reduction="max"),
    BatchRewardFunctionWrapper: lambda: BatchRewardFunctionWrapper(batch_of_halves, **MASKS),
    ExactMatch: lambda: ExactMatch(reduction="min", **MASKS),
    CosineSimilarity: lambda: CosineSimilarity(embedding_model=FakeEmbeddingModel(8), **MASKS),
    LMAsJudge: lambda: LMAsJudge(language_model=FakeJudgeLM(4), scale=(1, 10), **MASKS),
    ProgramAsJudge: lambda: ProgramAsJudge(program=FakeJudgeProgram(2), scale=(1, 5)),
    TokenF1: lambda: TokenF1(reduction=None, **MASKS),
}


def test_every_reward_class_has_a_round_trip_example():
    assert set(EXAMPLES) == set(rewards.ALL_OBJECTS)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_config_round_trip(cls):
    reward = EXAMPLES[cls]()
    rebuilt = assert_config_round_trip(reward)
    assert rebuilt.reduction == reward.reduction
    assert rebuilt.masks == reward.masks
    assert repr(rebuilt) == repr(reward)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_pickles_for_ray_workers(cls):
    reward = EXAMPLES[cls]()
    again = pickle.loads(pickle.dumps(reward))
    assert type(again) is cls and again.get_config() == reward.get_config()


@pytest.mark.parametrize(("identifier", "cls"), [
    ("exact_match", ExactMatch),
    ("ExactMatch", ExactMatch),
    ("cosine_similarity", CosineSimilarity),
    ("token_f1", TokenF1),
    ("f1_score", TokenF1),
    (ExactMatch, ExactMatch),
    ({"class_name": "ExactMatch", "config": {"in_mask": ["answer"]}}, ExactMatch),
    ({"class_name": "exact_match", "config": {}}, ExactMatch),
    (always_half, RewardFunctionWrapper),
    ("synaray_tests>always_half", RewardFunctionWrapper),
])
def test_get_resolves_identifiers(identifier, cls):
    assert type(rewards.get(identifier)) is cls


def test_get_none_and_instances():
    assert rewards.get(None) is None
    reward = TokenF1()
    assert rewards.get(reward) is reward


def test_get_round_trips_a_serialized_reward():
    reward = ExactMatch(reduction="max", in_mask=["answer"])
    again = rewards.get(rewards.serialize(reward))
    assert isinstance(again, ExactMatch) and again.get_config() == reward.get_config()
    assert rewards.deserialize(rewards.serialize(reward)).reduction == "max"


@pytest.mark.parametrize("identifier", ["no_such_reward", 42, ["exact_match"],
                                        {"class_name": "NoSuchReward", "config": {}}])
def test_get_refuses_unknown_identifiers(identifier):
    with pytest.raises(ConfigError, match=r"reward identifier|Cannot find"):
        rewards.get(identifier)


def test_get_by_name_of_a_reward_that_needs_arguments_explains():
    with pytest.raises(ConfigError, match=r"LMAsJudge.*Pass an instance"):
        rewards.get("lm_as_judge")


def test_public_names():
    assert sorted(rewards.__all__) == rewards.__all__
    for name in rewards.__all__:
        assert hasattr(rewards, name)
