"""CosineSimilarity with a fake embedding model, and once with the real local MiniLM."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from tests.helpers.config_roundtrip import assert_config_round_trip
from tests.rewards.fakes import FakeEmbeddingModel
from tests.rewards.strategies import json_records

from synaray import rewards
from synaray.errors import LMOutputError, LMTimeout
from synaray.rewards import CosineSimilarity
from synaray.rewards.cosine_similarity import _embeddings_of, cosine


@settings(max_examples=100, deadline=None)
@given(json_records())
def test_identical_prediction_and_truth_give_one(record):
    model = FakeEmbeddingModel()
    assert asyncio.run(CosineSimilarity(embedding_model=model)(record, record)) == 1.0
    assert model.requests == []  # identical texts are not embedded


async def test_per_field_cosine_mapped_to_unit_interval_and_averaged():
    model = FakeEmbeddingModel()
    reward = CosineSimilarity(embedding_model=model)
    y_true = {"answer": "cat sat down", "label": "Paris"}
    y_pred = {"answer": "the cat sat", "label": "Paris"}
    expected_answer = (cosine(model.embed("cat sat down"), model.embed("the cat sat")) + 1) / 2
    assert 0.5 < expected_answer < 1.0
    assert await reward(y_true, y_pred) == (expected_answer + 1.0) / 2


async def test_one_embedding_request_per_sample_with_all_its_texts():
    model = FakeEmbeddingModel()
    reward = CosineSimilarity(embedding_model=model, reduction="none")
    values = await reward([{"a": "x y", "b": "dog"}, {"a": "z"}],
                          [{"a": "y", "b": "cat"}, {"a": "w"}])
    assert len(values) == 2
    assert sorted(map(sorted, model.requests)) == [["cat", "dog", "x y", "y"], ["w", "z"]]


async def test_only_fields_of_the_masked_truth_count_and_missing_fields_score_zero():
    model = FakeEmbeddingModel()
    reward = CosineSimilarity(embedding_model=model, in_mask=["answer", "label"])
    y_true = {"answer": "4", "label": "x", "thinking": "long"}
    assert await reward(y_true, {"answer": "4", "thinking": "other"}) == 0.5
    assert model.requests == []
    assert await reward(y_true, None) == 0.0


async def test_opposite_vectors_give_zero():
    class Opposite:
        async def __call__(self, texts):
            half = len(texts) // 2
            return {"embeddings": [[1.0, 0.0]] * half + [[-1.0, 0.0]] * half}

    assert await CosineSimilarity(embedding_model=Opposite())({"a": "x"}, {"a": "y"}) == 0.0


async def test_failed_embedding_calls_score_zero_and_are_counted():
    class Short:
        async def __call__(self, texts):
            return {"embeddings": [[1.0]]}

    class Failing:
        async def __call__(self, texts):
            raise LMTimeout("embedding timed out")

    for model in (Short(), Failing()):
        reward = CosineSimilarity(embedding_model=model, reduction="none")
        assert await reward([{"a": "x"}, {"a": "same"}], [{"a": "y"}, {"a": "same"}]) == \
            [0.0, 1.0]
        assert reward.failed_embeddings == 1
        reward.reset_counters()
        assert reward.failed_embeddings == 0


def test_embeddings_of_the_wrong_count_are_an_output_error():
    with pytest.raises(LMOutputError, match="1 embeddings for 2 texts"):
        _embeddings_of({"embeddings": [[1.0]]}, 2)


def test_config_includes_the_embedding_model():
    reward = CosineSimilarity(embedding_model=FakeEmbeddingModel(dim=16), in_mask=["answer"])
    config = reward.get_config()
    assert config["embedding_model"]["class_name"] == "FakeEmbeddingModel"
    assert config["embedding_model"]["config"] == {"dim": 16}
    rebuilt = assert_config_round_trip(reward)
    assert isinstance(rebuilt.embedding_model, FakeEmbeddingModel)
    assert rebuilt.embedding_model.dim == 16


def test_string_id_builds_with_the_default_model():
    reward = rewards.get("cosine_similarity")
    assert isinstance(reward, CosineSimilarity)
    assert reward.embedding_model is None
    assert reward.get_config()["embedding_model"] is None


def _real_embedding_model():
    try:
        from synaray.lm import EmbeddingModel
    except ImportError as exc:
        pytest.skip(f"synaray.lm.EmbeddingModel is not importable yet: {exc}")
    try:
        return EmbeddingModel("local/minilm")
    except Exception as exc:  # the local extra may not be installed
        pytest.skip(f"EmbeddingModel('local/minilm') is not available: {exc}")


@pytest.mark.llm
async def test_real_minilm_embeddings():
    reward = CosineSimilarity(embedding_model=_real_embedding_model(), in_mask=["answer"],
                              reduction="none")
    y_true = [{"answer": "The capital of France is Paris."}] * 3
    y_pred = [{"answer": "The capital of France is Paris.", "thinking": "easy"},
              {"answer": "Paris is France's capital city."},
              {"answer": "Bananas are rich in potassium."}]
    same, close, far = await reward(y_true, y_pred)
    assert same == 1.0
    assert 0.0 <= far < close < 1.0
    assert_config_round_trip(reward)
