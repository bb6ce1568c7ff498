"""Token-level F-scores, precision and recall: hand-computed values and averages."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from tests.rewards.strategies import json_records

from synaray.errors import ConfigError
from synaray.metrics import F1Score, FBetaScore, Precision, Recall
from synaray.rewards import TokenF1


async def test_hand_computed_f1_on_a_one_field_record_is_0_8():
    m = F1Score(in_mask=["answer"])
    await m.update_state({"answer": "cat sat down"}, {"answer": "The cat sat.", "thinking": "x"})
    assert m.result() == 0.8
    assert m.get_state() == {"true_positives": {"answer": 2}, "false_positives": {"answer": 0},
                             "false_negatives": {"answer": 1}}
    assert await TokenF1(in_mask=["answer"])({"answer": "cat sat down"},
                                             {"answer": "The cat sat."}) == 0.8


async def test_precision_recall_fbeta_on_the_same_record():
    y_true, y_pred = {"answer": "cat sat down"}, {"answer": "The cat sat."}
    for metric, expected in ((Precision(), 1.0), (Recall(), 2 / 3),
                             (FBetaScore(beta=2.0), 5 * 2 / (5 * 2 + 4 * 1 + 0)),
                             (FBetaScore(beta=0.5), 1.25 * 2 / (1.25 * 2 + 0.25 * 1 + 0))):
        await metric.update_state(y_true, y_pred)
        assert metric.result() == pytest.approx(expected, abs=1e-15)


Y_TRUE = [{"answer": "cat sat down", "label": "yes"}, {"answer": "dog", "label": "yes"}]
Y_PRED = [{"answer": "The cat sat.", "label": "no"}, {"answer": "dog ran", "label": "yes"}]
# answer: tp 3, fp 1, fn 1 -> F1 0.75; label: tp 1, fp 1, fn 1 -> F1 0.5.


@pytest.mark.parametrize(("average", "expected"), [
    (None, [0.75, 0.5]),
    ("micro", 2 / 3),            # tp 4, fp 2, fn 2
    ("macro", 0.625),
    ("weighted", 2 / 3),         # (0.75 * 4 + 0.5 * 2) / 6
])
async def test_averages(average, expected):
    m = F1Score(average=average)
    await m.update_state(Y_TRUE, Y_PRED)
    assert m.result() == expected
    assert m.result_per_field() == {"answer": 0.75, "label": 0.5}


async def test_precision_and_recall_per_field():
    p, r = Precision(), Recall()
    for m in (p, r):
        await m.update_state(Y_TRUE, Y_PRED)
    assert p.result() == [0.75, 0.5] and r.result() == [0.75, 0.5]


async def test_missing_prediction_counts_every_true_token_as_missed():
    m = F1Score(in_mask=["answer"])
    await m.update_state([{"answer": "cat sat"}, {"answer": "dog"}], [None, {"answer": "dog"}])
    assert m.get_state()["false_negatives"] == {"answer": 2}
    assert m.result() == 2 * 1 / (2 * 1 + 0 + 2)


async def test_empty_metric_and_empty_fields():
    assert F1Score().result() == 0.0
    m = F1Score()
    await m.update_state({"answer": ""}, {"answer": "the"})
    assert m.result() == 1.0  # no tokens on either side: agreement


@settings(max_examples=100, deadline=None)
@given(json_records())
def test_identical_prediction_and_truth_give_one(record):
    for average in (None, "micro", "macro", "weighted"):
        m = F1Score(average=average)
        asyncio.run(m.update_state(record, record))
        result = m.result()
        if not record or not m.result_per_field():
            assert result == 0.0  # nothing to score
        elif isinstance(result, list):
            assert result == [1.0] * len(result)
        else:
            assert result == 1.0


@pytest.mark.parametrize(("kwargs", "argument"), [({"average": "mean"}, "average"),
                                                  ({"beta": 0}, "beta"),
                                                  ({"beta": "1"}, "beta")])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ConfigError, match=f"`{argument}`"):
        FBetaScore(**kwargs)


def test_names_and_configs():
    assert F1Score().name == "f1_score" and FBetaScore().name == "fbeta_score"
    assert "beta" not in F1Score().get_config()
    assert FBetaScore(beta=2.0).get_config()["beta"] == 2.0
    assert Precision(average="macro").get_config()["average"] == "macro"
