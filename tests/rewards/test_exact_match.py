"""ExactMatch: masked JSON equality; keeps `reduction` in its config."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from tests.helpers.config_roundtrip import assert_config_round_trip
from tests.rewards.strategies import json_records

from synaray import rewards
from synaray.rewards import ExactMatch, exact_match


@settings(max_examples=100, deadline=None)
@given(json_records())
def test_identical_prediction_and_truth_give_one(record):
    assert asyncio.run(ExactMatch()(record, record)) == 1.0


async def test_only_masked_fields_count():
    reward = ExactMatch(in_mask=["answer"])
    assert await reward({"answer": "4"}, {"answer": "4", "thinking": "..."}) == 1.0
    assert await reward({"answer": "4"}, {"answer": "5", "thinking": "..."}) == 0.0
    assert await ExactMatch()({"answer": "4"}, {"answer": "4", "thinking": "..."}) == 0.0


async def test_equality_is_strict_json_equality():
    assert await ExactMatch()({"answer": "4"}, {"answer": 4}) == 0.0
    assert exact_match({"answer": "4"}, None) == 0.0


def test_config_keeps_reduction():
    reward = ExactMatch(reduction="min", in_mask=["answer"], out_mask_pattern="^x")
    config = reward.get_config()
    assert config["reduction"] == "min"
    assert config == {"name": "exact_match", "reduction": "min", "in_mask": ["answer"],
                      "out_mask": None, "in_mask_pattern": None, "out_mask_pattern": "^x"}
    assert assert_config_round_trip(reward).reduction == "min"


def test_string_id():
    assert isinstance(rewards.get("exact_match"), ExactMatch)
    assert repr(rewards.get("exact_match")) == "<ExactMatch name=exact_match reduction=mean>"


async def test_a_list_of_accepted_answers_matches_any_member_exactly():
    accepted = {"answer": ["4", "four"]}
    assert await ExactMatch()(accepted, {"answer": "four"}) == 1.0
    assert await ExactMatch()(accepted, {"answer": "Four"}) == 0.0  # still strict equality
    assert exact_match(accepted, {"answer": "5"}) == 0.0
    # a list the model writes itself is compared as a list
    assert exact_match({"tags": ["a", "b"]}, {"tags": ["a", "b"]}) == 1.0
    assert exact_match({"tags": ["a", "b"]}, {"tags": ["b", "a"]}) == 0.0


async def test_accuracy_metric_counts_accepted_answers():
    from synaray.metrics import Accuracy

    metric = Accuracy()
    await metric.update_state({"answer": ["4", "four"]}, {"answer": "four"})
    await metric.update_state({"answer": ["4", "four"]}, {"answer": "5"})
    assert metric.result() == 0.5
