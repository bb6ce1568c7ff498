"""TokenF1: per-sample SQuAD token F1, mean over fields."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from tests.rewards.strategies import json_records

from synaray import rewards
from synaray.rewards import TokenF1, token_f1_reward
from synaray.rewards.common import normalize_answer, token_f1


async def test_hand_computed_f1_is_0_8():
    # Tokens: {cat, sat} against {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8.
    assert token_f1("cat sat down", "The cat sat.") == 0.8
    assert await TokenF1()({"answer": "cat sat down"}, {"answer": "The cat sat."}) == 0.8


def test_squad_normalisation():
    assert normalize_answer("The  Cat, an apple & a DOG!") == "cat apple dog"
    assert token_f1("", "") == 1.0
    assert token_f1("cat", "") == 0.0
    assert token_f1("the a an", "...") == 1.0


@settings(max_examples=100, deadline=None)
@given(json_records())
def test_identical_prediction_and_truth_give_one(record):
    assert asyncio.run(TokenF1()(record, record)) == 1.0


async def test_mean_over_fields_with_masks():
    reward = TokenF1(out_mask=["thinking"])
    y_true = {"answer": "cat sat down", "label": "yes", "thinking": "x"}
    y_pred = {"answer": "The cat sat.", "label": "no", "thinking": "y"}
    assert await reward(y_true, y_pred) == (0.8 + 0.0) / 2


async def test_nested_fields_are_compared_leaf_by_leaf():
    y_true = {"steps": [{"text": "add two"}, {"text": "carry one"}]}
    y_pred = {"steps": [{"text": "add two"}]}
    assert token_f1_reward(y_true, y_pred) == 0.5
    assert await TokenF1()(y_true, y_pred) == 0.5


def test_string_ids():
    for name in ("token_f1", "TokenF1", "f1_score"):
        assert isinstance(rewards.get(name), TokenF1)
