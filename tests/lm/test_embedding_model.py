"""EmbeddingModel against the loopback stub: shape, per-text cache, retries, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.openai_stub import StubReply, stub_embedding
from synaray.errors import ConfigError, LMInputError, LMRateLimited
from synaray.lm import EmbeddingModel
from synaray.utils.tracing import trace_scope


def make_em(stub, **kwargs) -> EmbeddingModel:
    kwargs.setdefault("cache", False)
    kwargs.setdefault("backoff_base_s", 0.01)
    return EmbeddingModel("openai/test-embed", api_base=stub.api_base, api_key="x", **kwargs)


async def test_returns_synalinks_shape_and_array(openai_stub):
    em = make_em(openai_stub)
    out = await em(["a", "b"])
    assert out == {"embeddings": [stub_embedding("a"), stub_embedding("b")]}
    array = await em.embed(["a", "b", "c"])
    assert array.shape == (3, 8)


async def test_each_text_is_cached_on_its_own(openai_stub, tmp_path):
    em = make_em(openai_stub, cache=str(tmp_path / "c.sqlite"))
    first = await em.embed(["a", "b"])
    second = await em.embed(["b", "c", "a", "c"])
    assert openai_stub.requests[1]["input"] == ["c"]  # only the new text, once
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[2], first[0])
    await em.embed(["a", "c"])
    assert openai_stub.request_count == 2
    assert em.usage.cache_hits == 1 and em.usage.calls == 3


async def test_batches(openai_stub):
    await make_em(openai_stub, batch_size=2).embed([str(i) for i in range(5)])
    assert sorted(len(r["input"]) for r in openai_stub.requests) == [1, 2, 2]


async def test_rate_limit_is_retried(openai_stub):
    openai_stub.script(StubReply(status=429, headers={"Retry-After": "0"}))
    array = await make_em(openai_stub).embed(["a"])
    assert array.shape == (1, 8) and openai_stub.request_count == 2


async def test_failure_raises_after_retries_and_is_counted(openai_stub, tmp_path):
    openai_stub.default = StubReply(status=429)
    em = make_em(openai_stub, retries=1, cache=str(tmp_path / "c.sqlite"))
    with trace_scope() as trace, pytest.raises(LMRateLimited):
        await em.embed(["a"])
    assert openai_stub.request_count == 2
    assert em.usage.failures_by_type == {"LMRateLimited": 1}
    assert trace.failures == 1
    openai_stub.default = StubReply()
    await em.embed(["a"])  # the failure was not cached
    assert openai_stub.request_count == 3


async def test_input_error_is_not_retried(openai_stub):
    openai_stub.default = StubReply(status=400)
    with pytest.raises(LMInputError):
        await make_em(openai_stub).embed(["a"])
    assert openai_stub.request_count == 1


async def test_bad_texts_raise_config_error(openai_stub):
    with pytest.raises(ConfigError):
        await make_em(openai_stub).embed([1, 2])


def test_config_round_trip():
    em = EmbeddingModel("openai/e", api_key="sk-secret", batch_size=16, dimensions=64)
    config = em.get_config()
    assert "sk-secret" not in json.dumps(config) and config["dimensions"] == 64
    assert EmbeddingModel.from_config(config).get_config() == config
    assert repr(em) == "<EmbeddingModel model=openai/e>"


def test_unknown_local_embedding_model():
    with pytest.raises(ConfigError, match="local/minilm"):
        EmbeddingModel("local/bert")


async def test_pickled_model_still_works(openai_stub, tmp_path):
    import pickle

    em = make_em(openai_stub, cache=str(tmp_path / "c.sqlite"))
    first = await em.embed(["a"])
    clone = pickle.loads(pickle.dumps(em))
    assert clone.usage.calls == 0
    np.testing.assert_array_equal(await clone.embed(["a"]), first)
    assert openai_stub.request_count == 1
