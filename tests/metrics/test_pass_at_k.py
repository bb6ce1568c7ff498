"""PassAtK: the unbiased estimator, input shapes, correctness rule."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synaray.errors import ConfigError, DataError
from synaray.metrics import PassAtK, pass_at_k
from synaray.rewards import TokenF1


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n),
                                                     st.integers(1, n))))
def test_estimator_equals_the_probability_over_all_k_subsets(nck):
    n, c, k = nck
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    hits = sum(any(samples[i] for i in s) for s in subsets)
    assert pass_at_k(n, c, k) == Fraction(hits, len(subsets))


async def test_single_example_and_batch_shapes():
    m = PassAtK(k=1)
    await m.update_state({"a": 1}, [{"a": 1}, {"a": 2}])            # one example, n=2, c=1
    await m.update_state([{"a": 3}], [[{"a": 3}, {"a": 3}, None]])  # a batch of one, c=2
    assert m.result() == float((Fraction(1, 2) + Fraction(2, 3)) / 2)
    assert m.get_state()["count"] == 2
    assert m.name == "pass_at_1"


async def test_reward_and_threshold_decide_correctness():
    m = PassAtK(k=2, reward=TokenF1(), threshold=0.8, in_mask=["answer"])
    await m.update_state({"answer": "cat sat down"},
                         [{"answer": "The cat sat."}, {"answer": "dog"}, {"answer": "cat"}])
    assert m.result() == float(pass_at_k(3, 1, 2))
    m2 = PassAtK(k=1, reward="exact_match")
    await m2.update_state({"a": 1}, [{"a": 1}])
    assert m2.result() == 1.0


async def test_update_counts():
    m = PassAtK(k=2)
    m.update_counts(n=4, c=1)
    m.update_counts(n=2, c=0)
    assert m.result() == 0.25


async def test_errors():
    m = PassAtK(k=3)
    with pytest.raises(DataError, match="example 0 has 2 predictions; pass@3 needs"):
        await m.update_state({"a": 1}, [{"a": 1}, {"a": 1}])
    with pytest.raises(DataError, match="one list of predictions per example"):
        await m.update_state([{"a": 1}], [{"a": 1}])
    with pytest.raises(ConfigError, match="`k`"):
        PassAtK(k=0)
