"""Masks keep and drop exactly the named fields, on both sides, before `call`."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.rewards.strategies import FIELDS, texts

from synaray.rewards import Reward

flat_records = st.dictionaries(st.sampled_from(FIELDS), texts, max_size=len(FIELDS))
field_sets = st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS))


class Recorder(Reward):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, y_true, y_pred):
        self.seen.append((y_true.get_json(), y_pred.get_json()))
        return 1.0


def _seen(reward, y_true, y_pred):
    asyncio.run(reward(y_true, y_pred))
    return reward.seen[0]


@settings(max_examples=100, deadline=None)
@given(flat_records, flat_records, field_sets)
def test_in_mask_keeps_exactly_the_named_fields(y_true, y_pred, names):
    seen_true, seen_pred = _seen(Recorder(in_mask=names), y_true, y_pred)
    if names:
        assert seen_true == {k: v for k, v in y_true.items() if k in names}
        assert seen_pred == {k: v for k, v in y_pred.items() if k in names}
    else:  # no mask: everything is kept
        assert (seen_true, seen_pred) == (y_true, y_pred)


@settings(max_examples=100, deadline=None)
@given(flat_records, flat_records, field_sets)
def test_out_mask_drops_exactly_the_named_fields(y_true, y_pred, names):
    seen_true, seen_pred = _seen(Recorder(out_mask=names), y_true, y_pred)
    assert seen_true == {k: v for k, v in y_true.items() if k not in names}
    assert seen_pred == {k: v for k, v in y_pred.items() if k not in names}


@settings(max_examples=50, deadline=None)
@given(flat_records, field_sets, field_sets)
def test_in_mask_then_out_mask(record, keep, drop):
    seen_true, _ = _seen(Recorder(in_mask=keep or None, out_mask=drop or None), record, record)
    expected = {k: v for k, v in record.items() if (not keep or k in keep) and k not in drop}
    assert seen_true == expected


def test_masks_apply_at_every_level():
    record = {"answer": "4", "steps": [{"answer": "2", "thinking": "a"}],
              "meta": {"answer": "x", "thinking": "b"}}
    seen_true, _ = _seen(Recorder(out_mask=["thinking"]), record, record)
    assert seen_true == {"answer": "4", "steps": [{"answer": "2"}], "meta": {"answer": "x"}}
    seen_true, _ = _seen(Recorder(in_mask=["answer"]), record, record)
    assert seen_true == {"answer": "4", "steps": [{"answer": "2"}]}
