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
