"""LocalEngine bounds LM calls in flight (not samples), for real litellm calls and rewards."""

import asyncio
import json

import pytest

import synaray
from synaray.lm._litellm import import_litellm
from synaray.optimizers.protocol import EvalRequest, candidate_id


class Q(synaray.DataModel):
    q: str


class A(synaray.DataModel):
    answer: str


class InFlight:
    """Wraps `litellm.acompletion`: answers {"answer": q} after a delay, counts the peak."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s, self.now, self.peak, self.calls = delay_s, 0, 0, 0

    async def __call__(self, **request):
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.delay_s)
            q = json.loads(request["messages"][-1]["content"])["q"]
            return import_litellm().ModelResponse(
                choices=[{"message": {"role": "assistant",
                                      "content": json.dumps({"answer": q})}}])
        finally:
            self.now -= 1


class SlowReward(synaray.rewards.Reward):
    """Exact match that takes `delay_s` per sample (as an async judge would, without an LM)."""

    def __init__(self, delay_s: float = 0.05, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay_s = delay_s
        self.running = 0
        self.peak = 0

    async def call(self, y_true, y_pred):
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(self.delay_s)
        self.running -= 1
        return float(y_true.get_json() == y_pred.get_json())


async def program_and_data(n: int):
    lm = synaray.LanguageModel("openai/stub", api_base="http://127.0.0.1:9/v1", cache=False,
                               retries=0, max_concurrency=1000, transport="litellm")
    inputs = synaray.Input(data_model=Q)
    outputs = await synaray.Generator(data_model=A, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="stub")
    from synaray.data.datasets import Dataset

    ids = [str(i) for i in range(n)]
    return program, Dataset(ids, [Q(q=i) for i in ids], [A(answer=i) for i in ids])


@pytest.mark.parametrize("bound", [1, 3])
async def test_lm_calls_in_flight_never_exceed_max_concurrency(monkeypatch, bound):
    stub = InFlight(delay_s=0.02)
    monkeypatch.setattr(import_litellm(), "acompletion", stub)
    program, data = await program_and_data(24)
    reward = SlowReward(delay_s=0.05)
    engine = synaray.engines.LocalEngine(max_concurrency=bound)
    await engine.start(program, reward, {"train": data})
    state = program.get_state()
    results = await engine.evaluate([EvalRequest(candidate_id(state), state,
                                                 tuple(data.ids), "train")])
    await engine.close()

    assert [r.example_id for r in results] == data.ids
    assert all(r.reward == 1.0 and r.error is None for r in results)
    assert stub.calls == 24
    assert stub.peak == bound  # the bound is reached and never exceeded
    # rewards do not hold an LM slot: more samples are scored at once than LM calls run
    assert reward.peak > bound


async def test_bound_is_shared_by_all_requests_of_one_evaluate(monkeypatch):
    stub = InFlight(delay_s=0.02)
    monkeypatch.setattr(import_litellm(), "acompletion", stub)
    program, data = await program_and_data(12)
    engine = synaray.engines.LocalEngine(max_concurrency=2)
    await engine.start(program, synaray.rewards.ExactMatch(), {"train": data})
    requests = []
    for instructions in ["one", "two", "three"]:
        program.get_state()
        state = {name: {**s, "instructions": instructions}
                 for name, s in program.get_state().items()}
        requests.append(EvalRequest(candidate_id(state), state, tuple(data.ids), "train"))
    results = await engine.evaluate(requests)
    await engine.close()
    assert len(results) == 36 and stub.calls == 36
    assert stub.peak == 2
