"""A real `synaray.Program` on `LocalEngine` with fake models, driven by hand."""

from __future__ import annotations

import json

import synaray
from synaray.engines import LocalEngine
from synaray.optimizers import PopulationSearch, RandomFewShot
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel

from .driver import KEY_PHRASE, Label, Number, canonical, make_dataset, rule_writer


@register_synaray_serializable(package="tests")
def thirds_program_lm(messages: list[dict], schema: dict | None) -> dict:
    """Right on multiples of 3; elsewhere only with >= 2 examples or the rule in the prompt."""
    n = int(json.loads(messages[-1]["content"])["q"])
    knows = (len(messages) - 2) // 2 >= 2 or KEY_PHRASE in messages[0]["content"]
    truth = "no" if n % 3 == 0 else "yes"
    return {"answer": truth if knows or n % 3 == 0 else "no"}


async def run(optimizer, jitter_s=0.0, latency_seed=None):
    lm = FakeLanguageModel(thirds_program_lm, jitter_s=jitter_s, seed=latency_seed)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm, name="answerer")(
        inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="thirds")
    train, val = make_dataset(24, "t"), make_dataset(12, "v", start=1000)
    engine = LocalEngine(max_concurrency=4)
    await engine.start(program, synaray.rewards.get("exact_match"), {"train": train, "val": val})
    optimizer.setup(program.get_state(), train, val, batch_size=6, epochs=2)
    seen = set()
    while not optimizer.finished:
        requests = optimizer.ask()
        results = await engine.evaluate(requests) if requests else []
        keys = {(r.candidate_id, r.split, r.example_id) for r in results}
        assert not keys & seen and len(keys) == len(results)
        seen |= keys
        await optimizer.tell(results)
    await engine.close()
    program.set_state(optimizer.best().state)
    return optimizer, program


async def test_random_few_shot_improves_a_real_program():
    optimizer, program = await run(RandomFewShot(population_size=4))
    assert optimizer.demos.modules() == ["answerer"]
    assert optimizer.val_reward(optimizer.best().id) == 1.0
    assert len(program.get_state()["answerer"]["examples"]) >= 2


async def test_population_search_reflection_improves_a_real_program():
    search = PopulationSearch(language_model=FakeLanguageModel(rule_writer),
                              reflection_probability=1.0, resample_probability=0.0,
                              crossover_probability=0.0, population_size=4)
    optimizer, program = await run(search)
    assert KEY_PHRASE in program.get_state()["answerer"]["instructions"]
    assert optimizer.val_reward(optimizer.best().id) == 1.0


async def test_random_latencies_do_not_change_the_search():
    runs = [await run(PopulationSearch(language_model=FakeLanguageModel(rule_writer),
                                       population_size=4, seed=7),
                      jitter_s=0.003, latency_seed=s) for s in (1, 2)]
    (first, _), (second, _) = runs
    assert canonical(first.state_dict()) == canonical(second.state_dict())
