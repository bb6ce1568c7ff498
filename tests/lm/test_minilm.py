"""`local/minilm`: the in-process ONNX MiniLM behind litellm."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from synaray.errors import MissingExtraError
from synaray.lm import EmbeddingModel

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the `local` extra is not installed")


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def minilm():
    return EmbeddingModel("local/minilm", cache=False)


async def test_shape_and_unit_norm(minilm):
    vectors = await minilm.embed(["A man is playing a guitar.", "Stocks fell today.", "x"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_similar_sentences_are_closer_than_unrelated_ones(minilm):
    cat, kitten, tax = await minilm.embed(["A cat sits on the mat.",
                                           "A kitten is sitting on a rug.",
                                           "The tax reform was approved by parliament."])
    assert cos(cat, kitten) > cos(cat, tax) + 0.2


async def test_identical_text_has_cosine_one_and_batching_does_not_matter(minilm):
    texts = ["short", "a much longer sentence " * 20, "short"]
    batched = await minilm.embed(texts)
    single = np.vstack([await minilm.embed([t]) for t in texts])
    assert cos(batched[0], batched[2]) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(batched, single, atol=1e-5)


async def test_synalinks_return_shape_and_usage(minilm):
    out = await minilm(["hello world"])
    assert len(out["embeddings"]) == 1 and len(out["embeddings"][0]) == 384
    assert minilm.usage.prompt_tokens > 0


async def test_long_inputs_are_truncated(minilm):
    vectors = await minilm.embed(["word " * 2000])
    assert vectors.shape == (1, 384)


async def test_cached_embeddings_equal_fresh_ones(tmp_path):
    em = EmbeddingModel("local/minilm", cache=str(tmp_path / "c.sqlite"))
    fresh = await em.embed(["cached sentence"])
    again = await em.embed(["cached sentence"])
    np.testing.assert_array_equal(fresh, again)
    assert em.usage.cache_hits == 1


async def test_missing_extra_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'synaray\[local\]'"):
        await EmbeddingModel("local/minilm", cache=False).embed(["x"])
