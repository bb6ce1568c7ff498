"""RayEngine against a flaky model server: 20% HTTP 500, 10% HTTP 429 (seeded per request).

A fit completes; failed requests are retried (the server sees more requests than calls);
calls that still fail after their retries are scored failures (reward 0, error kept),
counted in the run's usage (History, status.json, evaluate's `failures`) and never written
to the response cache: a second pass sends exactly the failed calls again.
"""

from __future__ import annotations

import json

import pytest

import synaray
from helpers.faults import FlakyHandler
from helpers.openai_stub import OpenAIStub
from synaray.engines.ray import RayEngine
from synaray.lm import LanguageModel
from synaray.lm.cache import ResponseCache
from synaray.runs.storage import RunStorage
from trainers.conftest import DemoSearch, Label, Number, make_data

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

RETRIES = 1  # 2 attempts: with 30% of requests failing, about 9% of calls fail for good


def answer(messages: list[dict]) -> dict:
    """Like `demo_sensitive_handler`: right on multiples of 3, else only with >= 2 demos."""
    n = int(json.loads(messages[-1]["content"])["q"])
    n_examples = (len(messages) - 2) // 2
    truth = "no" if n % 3 == 0 else "yes"
    return {"answer": truth if n % 3 == 0 or n_examples >= 2 else "no"}


@pytest.fixture
def flaky():
    handler = FlakyHandler(answer, p500=0.2, p429=0.1, seed=3)
    with OpenAIStub(handler=handler) as stub:
        stub.flaky = handler
        yield stub


async def make_program(stub: OpenAIStub, cache_path: str) -> synaray.Program:
    lm = LanguageModel("openai/test", api_base=stub.api_base, cache=cache_path,
                       retries=RETRIES, backoff_base_s=0.001, backoff_max_s=0.002,
                       max_concurrency=64)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="flaky")
    program.compile(reward="exact_match", optimizer=DemoSearch(seed=1), metrics=["accuracy"])
    return program


async def test_fit_completes_retries_and_counts_failures(flaky, tmp_path):
    cache_path = str(tmp_path / "cache" / "lm_cache.sqlite")
    program = await make_program(flaky, cache_path)
    xs, ys = make_data(36)
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path / "runs"), run_name="flaky")
    history = await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.25,
                                engine=engine, verbose=False)

    assert len(history.history["val_reward"]) == 2
    counts = flaky.flaky.counts()
    failed_for_good = flaky.flaky.never_answered()
    spent = engine.remote_optimizer.spent
    # retried: the server saw every failure and more requests than distinct calls
    assert counts.get(500, 0) > 0 and counts.get(429, 0) > 0
    assert flaky.request_count == sum(counts.values()) > len(flaky.flaky.statuses)
    # a call that failed for good used all its attempts and is counted once, everywhere
    assert failed_for_good
    assert all(len(flaky.flaky.statuses[k]) == RETRIES + 1 for k in failed_for_good)
    assert spent.lm_failures == len(failed_for_good)
    assert history.history["lm_failures"][-1] == spent.lm_failures
    status = RunStorage(str(tmp_path / "runs"), "flaky").read_json("status.json")
    assert status["lm_failures"] == spent.lm_failures
    # only answered calls reached the cache
    assert len(ResponseCache(cache_path)) == len(flaky.flaky.answered())


async def test_failures_are_scored_and_never_cached(flaky, tmp_path):
    cache_path = str(tmp_path / "lm_cache.sqlite")
    program = await make_program(flaky, cache_path)
    xs, ys = make_data(60)

    def run():
        engine = RayEngine(num_evaluators=2, storage=str(tmp_path / "runs"))
        return program.evaluate(xs, ys, verbose=False, return_predictions=True, engine=engine)

    first = await run()
    failed = [r for r in first["predictions"] if r.error]
    assert first["failures"] == len(failed) == len(flaky.flaky.never_answered()) > 0
    assert all(r.reward == 0.0 and r.y_pred is None and r.lm_failures == 1 for r in failed)
    assert all("LMServerError" in r.error or "LMRateLimited" in r.error for r in failed)
    assert flaky.request_count > len(xs)
    assert len(ResponseCache(cache_path)) == len(xs) - len(failed)

    # The server recovers: only the failed calls are sent again; the rest are cache hits.
    flaky.flaky.enabled = False
    flaky.reset()
    second = await run()
    asked = sorted(json.loads(b["messages"][-1]["content"])["q"] for b in flaky.requests)
    assert asked == sorted(xs[int(r.example_id)].q for r in failed)
    assert second["failures"] == 0
    assert second["lm_calls"] == len(failed)
    assert all(r.reward == 1.0 for r in second["predictions"] if int(r.example_id) % 3 == 0)
    assert len(ResponseCache(cache_path)) == len(xs)
