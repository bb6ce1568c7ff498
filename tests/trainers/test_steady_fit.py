"""program.fit with PopulationSearch(steady_state=True): several evaluations in flight, the
optimizer's own LM calls under the engine's LM-call bound and in the budget."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.helpers.slots import CountingSemaphore

import synaray
from synaray.engines import LocalEngine
from synaray.lm.call_slots import limit_lm_calls
from synaray.optimizers import PopulationSearch
from synaray.optimizers.strategies.proposal import Proposal
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel

from .conftest import Label, Number, demo_sensitive_handler, make_data
from .test_fit import Kill


@register_synaray_serializable(package="tests")
def rule_proposer(messages, schema):
    """Proposes instructions stating the rule (reflection of the steady-fit tests)."""
    return {"instructions": "Answer no for a multiple of 3, else yes."}


def echo_proposer(messages, schema):
    """A new instruction derived from the prompt (deterministic, varied)."""
    digest = sum(ord(c) for c in messages[-1]["content"]) % 997
    return {"instructions": f"Think step by step (variant {digest})."}


class SlotCountingEngine(LocalEngine):
    """A LocalEngine whose LM-call bound counts what went through it."""

    async def _start(self, program, reward, datasets):
        await super()._start(program, reward, datasets)
        self._lm_slots = self.slots = CountingSemaphore(self.max_concurrency)


async def make_program(optimizer) -> synaray.Program:
    lm = FakeLanguageModel(demo_sensitive_handler, latency_s=0.001, jitter_s=0.003, seed=2)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="thirds")
    program.compile(reward="exact_match", optimizer=optimizer, metrics=["accuracy"])
    return program


@pytest.mark.parametrize("steady", [True, False])
async def test_fit_improves_and_books_every_lm_call_under_the_engine_bound(steady):
    writer = FakeLanguageModel(rule_proposer, latency_s=0.001)
    optimizer = PopulationSearch(language_model=writer, population_size=4, seed=2,
                                 reflection_probability=0.6, steady_state=steady)
    program = await make_program(optimizer)
    xs, ys = make_data(36)
    engine = SlotCountingEngine(max_concurrency=3)
    history = await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.25,
                                engine=engine, verbose=False)
    assert optimizer.finished and optimizer.best_val_reward == 1.0
    assert history.epoch == [0, 1] and history.history["val_reward"][-1] == 1.0
    assert writer.calls >= optimizer.counters["reflect"] > 0
    # every call (program and reflection) took a slot of the engine's bound, and was booked
    assert engine.slots.acquired == optimizer.spent.lm_calls
    assert engine.slots.peak <= 3
    assert len(optimizer.steady.completions) > 8 if steady else not optimizer.steady.completions


async def test_proposals_of_one_step_run_together_in_a_fixed_order():
    writer = FakeLanguageModel(echo_proposer, latency_s=0.002, jitter_s=0.01, seed=4)
    optimizer = PopulationSearch(language_model=writer)
    optimizer.setup({"generator": {"instructions": None, "examples": []}},
                    synaray.data.Dataset(["a"], [Number(q="1")], [Label(answer="yes")]))
    proposals = [Proposal([{"role": "user", "content": f"case {i}" * 8}]) for i in range(6)]
    slots = CountingSemaphore(3)
    with limit_lm_calls(slots):
        answers = await optimizer.propose_many(proposals)
    expected = [echo_proposer(p.messages, None)["instructions"] for p in proposals]
    assert [text for text, _ in answers] == expected
    assert slots.peak == 3 and slots.acquired == 6  # concurrent, within the LM-call bound
    assert optimizer.spent.lm_calls == 6 and optimizer.spent.tokens == 6 * 20


@pytest.mark.parametrize("jitter_seed", [1])
async def test_steady_fit_with_a_preset_stays_in_its_budget(jitter_seed):
    writer = FakeLanguageModel(rule_proposer, latency_s=0.001, jitter_s=0.002, seed=jitter_seed)
    optimizer = PopulationSearch(language_model=writer, auto="light", steady_state=True)
    program = await make_program(optimizer)
    xs, ys = make_data(36)
    await asyncio.wait_for(program.fit(xs, ys, validation_split=0.25, verbose=False,
                                       engine=LocalEngine(max_concurrency=4)), timeout=120)
    assert optimizer.finished and optimizer.spent.lm_calls <= 150
    assert optimizer.counters["demo_sets"] > 0 and optimizer.best_val_reward == 1.0


async def test_a_killed_steady_fit_resumes_from_its_backup(tmp_path):
    """BackupAndRestore saves the state after each generation's worth of work, requests in
    flight included; the resumed fit asks those again and finishes the search."""
    xs, ys = make_data(36)
    fit_args = dict(epochs=2, batch_size=6, validation_split=0.25, verbose=False)
    backup = tmp_path / "backup"

    def program_with_search():
        writer = FakeLanguageModel(rule_proposer, latency_s=0.001)
        return make_program(PopulationSearch(language_model=writer, population_size=4,
                                             seed=5, steady_state=True))

    killed = await program_with_search()
    with pytest.raises(KeyboardInterrupt):
        await killed.fit(xs, ys, engine=LocalEngine(max_concurrency=3), **fit_args,
                         callbacks=[synaray.callbacks.BackupAndRestore(backup), Kill(after=3)])
    saved = json.loads((backup / "optimizer_state.json").read_text())["optimizer"]
    steady = saved["extra"]["steady"]
    assert steady["completions"] and saved["generation"] == 3
    resumed = await program_with_search()
    restore = synaray.callbacks.BackupAndRestore(backup)
    await resumed.fit(xs, ys, engine=LocalEngine(max_concurrency=3), callbacks=[restore],
                      **fit_args)
    optimizer = resumed.optimizer
    assert restore.restored_from is not None and optimizer.finished
    log = optimizer.steady.completions
    assert log[:len(steady["completions"])] == steady["completions"]  # continued, not redone
    assert len(log) > len(steady["completions"]) and optimizer.best_val_reward == 1.0


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_a_steady_fit_runs_in_the_optimizer_actor_on_ray(tmp_path):
    """The SearchLoop in the optimizer actor drives the steady-state search: several
    requests in flight over the evaluator actors, a finished run within its budget."""
    from synaray.engines.ray import RayEngine

    writer = FakeLanguageModel(rule_proposer, latency_s=0.001, jitter_s=0.002, seed=1)
    optimizer = PopulationSearch(language_model=writer, auto="light", steady_state=True)
    program = await make_program(optimizer)
    xs, ys = make_data(36)
    engine = RayEngine(num_evaluators=2, max_concurrency=2, storage=str(tmp_path),
                       run_name="steady-ray")
    history = await asyncio.wait_for(program.fit(xs, ys, validation_split=0.25, verbose=False,
                                                 engine=engine), timeout=300)
    await engine.close()
    status = json.loads((tmp_path / "steady-ray" / "status.json").read_text())
    assert status["state"] == "finished" and status["lm_calls"] <= 150
    assert status["best_val_reward"] == 1.0
    assert history.history["val_accuracy"][-1] == 1.0
