"""For every metric: states of any split of the data, merged in any order, equal one pass.

Equal means `==`: the same state and the same float result, not approximately.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.rewards.fakes import FakeEmbeddingModel
from tests.rewards.strategies import texts

from synaray import metrics
from synaray.metrics import (
    Accuracy,
    BinaryAccuracy,
    F1Score,
    FBetaScore,
    Mean,
    MeanMetricWrapper,
    PassAtK,
    Precision,
    Recall,
    Sum,
)
from synaray.rewards import CosineSimilarity, ExactMatch, TokenF1

labels = st.one_of(st.booleans(), st.floats(0, 1), st.integers(0, 1))
y_trues = st.fixed_dictionaries({"answer": texts, "label": labels},
                                optional={"thinking": texts, "steps": st.lists(texts, max_size=2)})
y_preds = st.one_of(st.none(), y_trues, st.fixed_dictionaries({"answer": texts}))
pairs = st.lists(st.tuples(y_trues, y_preds), max_size=20)
# Values whose float sum depends on the order: huge and tiny magnitudes mixed.
values = st.lists(st.one_of(st.floats(-1e18, 1e18), st.floats(-1, 1),
                            st.sampled_from([0.1, 0.2, 0.3, 1e16, -1e16])), max_size=20)
pass_examples = st.lists(st.tuples(y_trues, st.lists(y_preds, min_size=2, max_size=5)),
                         max_size=12)

# metric factory, data strategy, how one item is fed to update_state
CASES = {
    "Accuracy": (lambda: Accuracy(in_mask=["answer"]), pairs),
    "BinaryAccuracy": (lambda: BinaryAccuracy(threshold=0.4), pairs),
    "F1Score": (lambda: F1Score(), pairs),
    "F1Score-micro": (lambda: F1Score(average="micro"), pairs),
    "FBetaScore": (lambda: FBetaScore(beta=2.0, average="weighted"), pairs),
    "Precision": (lambda: Precision(average="macro"), pairs),
    "Recall": (lambda: Recall(average="weighted", out_mask=["label"]), pairs),
    "Mean": (lambda: Mean(), values),
    "Sum": (lambda: Sum(), values),
    "MeanMetricWrapper-TokenF1": (lambda: MeanMetricWrapper(TokenF1()), pairs),
    "MeanMetricWrapper-Cosine": (
        lambda: MeanMetricWrapper(CosineSimilarity(embedding_model=FakeEmbeddingModel())),
        pairs),
    "PassAtK": (lambda: PassAtK(k=2, in_mask=["answer"]), pass_examples),
}


def test_every_metric_class_is_covered():
    covered = {type(factory()) for factory, _ in CASES.values()}
    assert covered == set(metrics.ALL_OBJECTS)


async def _feed(metric, items):
    if not items:
        return
    if isinstance(metric, (Mean, Sum)):
        await metric.update_state(items)
    else:
        await metric.update_state([t for t, _ in items], [p for _, p in items])


def _split(items, n_parts, rng):
    parts = [[] for _ in range(n_parts)]
    for item in items:
        parts[rng.randrange(n_parts)].append(item)
    for part in parts:
        rng.shuffle(part)
    return parts


async def _one_pass_and_merged(factory, items, n_parts, rng):
    one = factory()
    for start in range(0, len(items), 3):  # several update calls, as an engine makes
        await _feed(one, items[start:start + 3])
    shards = []
    for part in _split(items, n_parts, rng):
        shard = factory()
        await _feed(shard, part)
        shards.append(shard)
    rng.shuffle(shards)
    merged = factory()
    for i, shard in enumerate(shards):
        # Half of the shards arrive as JSON (as from another process), half as objects.
        merged.merge_state(json.loads(json.dumps(shard.get_state())) if i % 2 else shard)
    return one, merged


@pytest.mark.parametrize("case", list(CASES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_merged_states_equal_one_pass_exactly(case, data):
    factory, strategy = CASES[case]
    items = data.draw(strategy, label="items")
    n_parts = data.draw(st.integers(1, 8), label="n_parts")
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    one, merged = asyncio.run(_one_pass_and_merged(factory, items, n_parts, rng))
    assert merged.get_state() == one.get_state()
    assert merged.result() == one.result()
    restored = factory()
    restored.set_state(json.loads(json.dumps(one.get_state())))
    assert restored.result() == one.result()


async def test_float_sum_order_would_differ_but_the_mean_does_not():
    items = [1e16, 1.0, -1e16, 1.0]
    forward, backward = Mean(), Mean()
    await forward.update_state(items)
    await backward.update_state(items[::-1])
    assert forward.result() == backward.result() == 0.5


def test_exact_match_reward_metric_merges_too():
    async def run():
        a, b, whole = (MeanMetricWrapper(ExactMatch()) for _ in range(3))
        await a.update_state([{"x": 1}], [{"x": 1}])
        await b.update_state([{"x": 2}, {"x": 3}], [{"x": 0}, None])
        await whole.update_state([{"x": 1}, {"x": 2}, {"x": 3}], [{"x": 1}, {"x": 0}, None])
        a.merge_state(b)
        return a.result(), whole.result()

    merged, whole = asyncio.run(run())
    assert merged == whole == 1 / 3
