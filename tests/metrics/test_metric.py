"""The Metric base: declared state, get/set/merge, update_state, direction, repr."""

from __future__ import annotations

import pytest

from synaray.errors import ConfigError, DataError
from synaray.metrics import Accuracy, Metric


class Answered(Metric):
    def __init__(self, name=None, **masks):
        super().__init__(name=name, **masks)
        self.answered = self.add_state("answered", 0)
        self.seen = self.add_state("seen", 0)
        self.longest = self.add_state("longest", None, aggregation="max", dtype="int")
        self.fields = self.add_state("fields", {})

    async def update_batch(self, y_true, y_pred):
        self.answered.accumulate(sum(p is not None for p in y_pred))
        self.seen.accumulate(len(y_true))
        for p in y_pred:
            if p is not None:
                self.longest.accumulate(len(p.keys()))
                self.fields.accumulate({k: 1 for k in p.keys()})

    def result(self):
        return self.answered.value / self.seen.value if self.seen.value else 0.0


async def test_update_result_reset_and_call():
    m = Answered()
    await m.update_state([{"a": 1}, {"a": 2}], [{"a": 1, "b": 2}, None])
    assert m.result() == 0.5
    assert m.get_state() == {"answered": 1, "seen": 2, "longest": 2,
                             "fields": {"a": 1, "b": 1}}
    assert await m({"a": 3}, {"a": 3}) == 2 / 3
    m.reset_state()
    assert m.get_state() == {"answered": 0, "seen": 0, "longest": None, "fields": {}}


async def test_merge_state_from_a_metric_or_a_json_state():
    a, b = Answered(), Answered()
    await a.update_state({"x": 1}, {"x": 1, "y": 2, "z": 3})
    await b.update_state([{"x": 1}, {"x": 2}], [{"x": 1}, None])
    merged = Answered()
    merged.merge_state(a)
    merged.merge_state(b.get_state())
    assert merged.get_state() == {"answered": 2, "seen": 3, "longest": 3,
                                  "fields": {"x": 2, "y": 1, "z": 1}}


async def test_set_state_replaces():
    a = Answered()
    a.set_state({"answered": 4, "seen": 5, "longest": 1, "fields": {"q": 2}})
    assert a.result() == 0.8


def test_state_must_match():
    m = Answered()
    with pytest.raises(ConfigError, match="misses \\['fields'"):
        m.set_state({"answered": 1, "seen": 1, "longest": None})
    with pytest.raises(ConfigError, match="unknown \\['extra'\\]"):
        m.set_state({**m.get_state(), "extra": 1})
    with pytest.raises(ConfigError, match="Cannot merge a Accuracy into Answered"):
        m.merge_state(Accuracy())


def test_duplicate_state_name():
    m = Answered()
    with pytest.raises(ConfigError, match="already has a state named 'seen'"):
        m.add_state("seen", 0)


async def test_masks_and_missing_truth():
    m = Answered(in_mask=["a"])
    await m.update_state({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3})
    assert m.get_state()["fields"] == {"a": 1}
    with pytest.raises(DataError, match="y_true of sample 0 is None"):
        await m.update_state([None], [{"a": 1}])


def test_direction_and_repr():
    assert Answered.direction == "up" and Answered().direction == "up"
    assert repr(Answered()) == "<Answered name=answered>"
    assert repr(Answered(name="ok")) == "<Answered name=ok>"

    class Lower(Answered):
        direction = "down"

    assert Lower().direction == "down"

    class Wrong(Answered):
        direction = "sideways"

    with pytest.raises(ConfigError, match="'up' or 'down'"):
        Wrong()


def test_base_is_abstract():
    with pytest.raises(NotImplementedError):
        Metric().result()
