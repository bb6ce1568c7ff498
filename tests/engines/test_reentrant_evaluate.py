"""Engine.evaluate is re-entrant: concurrent calls on one engine keep their own progress
callbacks and metric states, and share the engine's one bound on LM calls."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.helpers.slots import CountingSemaphore

import synaray
from synaray.engines import LocalEngine
from synaray.optimizers import EvalRequest, candidate_id
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel
from synaray.trainers.data_adapter import to_dataset


class Number(synaray.DataModel):
    q: str


class Label(synaray.DataModel):
    answer: str


@register_synaray_serializable(package="tests")
def few_shot_reader(messages, schema):
    """Right on multiples of 3; on the rest only with >= 2 demos in the prompt."""
    n = int(json.loads(messages[-1]["content"])["q"])
    truth = "no" if n % 3 == 0 else "yes"
    return {"answer": truth if n % 3 == 0 or len(messages) >= 6 else "no"}


async def two_concurrent_evaluates(engine, slots=None):
    """Start `engine`, run two candidates' evaluates at once, check each kept its own
    results, progress and metric states; returns those states."""
    lm = FakeLanguageModel(few_shot_reader, latency_s=0.002, jitter_s=0.004, seed=1)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="thirds")
    program.compile(reward="exact_match", metrics=["accuracy"])
    xs = [Number(q=str(i)) for i in range(24)]
    ys = [Label(answer="no" if i % 3 == 0 else "yes") for i in range(24)]
    await engine.start(program, program.reward, {"eval": to_dataset(xs, ys)})
    if slots is not None:
        engine._lm_slots = slots
    state = program.get_state()
    demo = {"inputs": {"q": "1"}, "outputs": {"answer": "yes"}}
    other = {"generator": {**state["generator"], "examples": [demo, demo]}}
    ids = [str(i) for i in range(24)]
    requests = [EvalRequest(candidate_id(s), s, tuple(ids[k::2]), "eval")
                for k, s in enumerate((state, other))]
    seen: list[list] = [[], []]
    states: list[dict] = [{}, {}]
    try:
        results = await asyncio.gather(*(
            engine.evaluate([r], on_results=seen[k].extend, metric_states=states[k])
            for k, r in enumerate(requests)))
    finally:
        await engine.close()
    for k, request in enumerate(requests):
        assert [r.example_id for r in results[k]] == list(request.example_ids)
        assert sorted(r.example_id for r in seen[k]) == sorted(request.example_ids)
        assert {r.candidate_id for r in seen[k]} == {request.candidate_id}
        assert set(states[k]) == {(request.candidate_id, "eval")}
    accuracy = [states[k][(r.candidate_id, "eval")]["accuracy"] for k, r in enumerate(requests)]
    assert accuracy[0] != accuracy[1]  # the seed is wrong off the multiples of 3, `other` not
    return states


async def test_concurrent_evaluates_keep_their_own_results_and_share_the_lm_bound():
    slots = CountingSemaphore(3)
    await two_concurrent_evaluates(LocalEngine(max_concurrency=3), slots)
    assert slots.acquired == 24 and 1 < slots.peak <= 3


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_ray_engine_evaluates_concurrently_with_the_same_states(tmp_path):
    from synaray.engines.ray import RayEngine

    local = await two_concurrent_evaluates(LocalEngine(max_concurrency=3))
    engine = RayEngine(num_evaluators=2, chunk_size=4, storage=str(tmp_path),
                       run_name="reentrant")
    assert await two_concurrent_evaluates(engine) == local
