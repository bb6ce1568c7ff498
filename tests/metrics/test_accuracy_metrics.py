"""Accuracy (exact-match rate) and BinaryAccuracy (thresholded numeric fields)."""

from __future__ import annotations

import pytest

from synaray.errors import ConfigError
from synaray.metrics import Accuracy, BinaryAccuracy


async def test_accuracy_counts_exact_matches_of_masked_records():
    m = Accuracy(in_mask=["answer"])
    await m.update_state([{"answer": "4"}, {"answer": "5"}, {"answer": "6"}],
                         [{"answer": "4", "thinking": "."}, {"answer": 5}, None])
    assert m.result() == 1 / 3
    assert m.get_state() == {"correct": 1, "count": 3}
    assert Accuracy().result() == 0.0


async def test_binary_accuracy_thresholds_both_sides():
    m = BinaryAccuracy()
    await m.update_state(
        [{"spam": True, "score": 1, "note": "text"}, {"spam": False, "score": 0.2}],
        [{"spam": 0.9, "score": 0.4}, {"spam": 0.5, "score": "high"}])
    # spam: 0.9 > .5 == True (right), 0.5 > .5 is False == False (right);
    # score: 0.4 vs 1 (wrong), "high" is not numeric (wrong); "note" is ignored.
    assert m.get_state() == {"correct": 2, "count": 4}
    assert m.result() == 0.5


async def test_binary_accuracy_threshold_and_missing_prediction():
    m = BinaryAccuracy(threshold=0.8)
    await m.update_state([{"p": 1}, {"p": 1}], [{"p": 0.7}, None])
    assert m.result() == 0.0
    assert m.get_config()["threshold"] == 0.8


def test_bad_threshold():
    with pytest.raises(ConfigError, match="`threshold`"):
        BinaryAccuracy(threshold="half")
