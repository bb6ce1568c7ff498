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


# --- accepted answers (SQuAD's several references) ------------------------------------------
async def test_a_list_of_accepted_answers_scores_its_best_member():
    answers = ["Denver Broncos", "Broncos", "the Denver Broncos team"]
    for pred in ["Broncos", "Denver", "the team of Denver", "Carolina Panthers", ""]:
        expected = max(token_f1(a, pred) for a in answers)
        assert await TokenF1()({"answer": answers}, {"answer": pred}) == expected
    # with answers[0] alone "Broncos" would score 2/3; the official SQuAD F1 gives 1.0
    assert token_f1("Denver Broncos", "Broncos") < 1.0
    assert token_f1_reward({"answer": answers}, {"answer": "Broncos"}) == 1.0


async def test_lists_on_both_sides_are_still_compared_item_by_item():
    # a list field the model writes itself is not a set of alternatives
    assert await TokenF1()({"tags": ["cat", "dog"]}, {"tags": ["dog", "cat"]}) == 0.0
    nested = {"steps": [{"text": ["two plus two", "2+2"]}]}
    assert token_f1_reward(nested, {"steps": [{"text": "2+2"}]}) == 1.0


async def test_f1_score_metric_counts_the_best_accepted_answer():
    from synaray.metrics import F1Score

    metric = F1Score()
    await metric.update_state({"answer": ["Denver Broncos", "Broncos"]}, {"answer": "Broncos"})
    await metric.update_state({"answer": ["cat sat down"]}, {"answer": "cat"})
    # counts: (1 tp, 0 fp, 0 fn) + (1 tp, 0 fp, 2 fn) -> P = 1, R = 2/4, F1 = 2/3
    assert round(metric.result(), 6) == round(2 / 3, 6)
