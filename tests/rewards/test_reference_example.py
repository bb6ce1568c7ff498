"""The pieces of the reference page's compile example, with `import synaray as synalinks`."""

from __future__ import annotations

import pytest
from tests.rewards.fakes import FakeEmbeddingModel

import synaray as synalinks


async def _score(reward, metric):
    y_true = [{"answer": "Paris"}, {"answer": "cat sat down"}]
    y_pred = [{"thinking": "capital of France", "answer": "Paris"},
              {"thinking": "...", "answer": "The cat sat."}]
    reward_value = await reward(y_true, y_pred)
    await metric.update_state(y_true, y_pred)
    return reward_value, metric.result()


async def test_compile_example_pieces_with_a_fake_embedding_model():
    reward = synalinks.rewards.CosineSimilarity(embedding_model=FakeEmbeddingModel(),
                                                in_mask=["answer"])
    metrics = [synalinks.metrics.F1Score(in_mask=["answer"])]
    assert f"Reward: {reward}" == "Reward: <CosineSimilarity name=cosine_similarity " \
                                  "reduction=mean>"
    assert f"Metrics: {metrics}" == "Metrics: [<F1Score name=f1_score>]"
    reward_value, f1 = await _score(reward, metrics[0])
    assert 0.5 < reward_value < 1.0
    assert f1 == 2 * 3 / (2 * 3 + 0 + 1)  # answer tokens over the corpus: tp 3, fp 0, fn 1


@pytest.mark.llm
async def test_compile_example_pieces_with_the_local_minilm():
    try:
        embedding_model = synalinks.EmbeddingModel("local/minilm")
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"synaray.lm.EmbeddingModel is not available yet: {exc}")
    reward = synalinks.rewards.CosineSimilarity(embedding_model=embedding_model,
                                                in_mask=["answer"])
    metric = synalinks.metrics.F1Score(in_mask=["answer"])
    print(f"Reward: {reward}")
    print(f"Metrics: {[metric]}")
    reward_value, f1 = await _score(reward, metric)
    assert 0.5 < reward_value <= 1.0
    assert f1 == 6 / 7
