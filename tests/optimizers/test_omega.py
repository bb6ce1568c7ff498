"""OMEGA: LM mutation and crossover of instructions, Dominated Novelty pruning, few-shot."""

from __future__ import annotations

import pytest

from synaray.errors import ConfigError
from synaray.optimizers import OMEGA, Candidate
from synaray.testing import FakeLanguageModel

from .driver import (
    KEY_PHRASE,
    FakeEmbeddingModel,
    broken_writer,
    drive,
    echo_writer,
    rule_writer,
    seed_val_reward,
    setup,
)

FITNESS = {"rule rule yes": 1.0, "rule rule yes yes": 0.8, "think step": 0.3}


def by_instructions(state, x, y):
    return FITNESS.get(state["generator"]["instructions"], 0.0), {"answer": y["answer"]}


def members(optimizer, texts):
    ids = [optimizer.register(Candidate({"generator": {"instructions": t, "examples": []}},
                                        operation="test")).id for t in texts]
    optimizer.population = ids
    return ids


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"k_nearest": 0}, "k_nearest"),
    ({"crossover_probability": -0.1}, "crossover_probability"),
    ({"selection": "tournament"}, "selection"),
    ({"selection_temperature": 0.0}, "selection_temperature"),
    ({"nb_offspring": 0}, "nb_offspring"),
    ({"mutation_temperature": -1}, "mutation_temperature"),
    ({"sampling": "top"}, "sampling"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ConfigError, match=f"Invalid value for argument `{argument}`. Received"):
        OMEGA(**kwargs)


async def test_mutation_shows_the_lm_failures_with_expected_outputs():
    prompts = []

    def writer(messages, schema):
        prompts.append(messages[-1]["content"])
        assert schema["required"] == ["instructions"]
        return rule_writer(messages, schema)

    optimizer = OMEGA(language_model=FakeLanguageModel(writer), nb_max_examples=0,
                      nb_min_examples=0, population_size=4, reflection_examples=3)
    engine = setup(optimizer, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)
    child = optimizer.candidates[optimizer.population[1]]
    assert child.state["generator"]["instructions"] == rule_writer([], None)["instructions"]
    assert child.operation.startswith("mutation generator.instructions")
    assert "Current instructions:" in prompts[0] and prompts[0].count("Case ") == 3
    assert 'Expected program output: {"answer": "yes"}' in prompts[0]
    assert optimizer.counters["mutation"] == 1  # the second child was the same state


async def test_crossover_happens_from_the_second_generation_on():
    prompts = []

    def writer(messages, schema):
        prompts.append(messages[-1]["content"])
        return echo_writer(messages, schema)

    # seed 2: with seeds 0 and 1 this deterministic writer gives both first-generation
    # children the same instructions, so every crossover pairs equal texts (no LM call)
    optimizer = OMEGA(language_model=FakeLanguageModel(writer), crossover_probability=1.0,
                      population_size=4, nb_offspring=2, budget={"max_generations": 4},
                      seed=2)
    engine = setup(optimizer, epochs=10)
    await drive(optimizer, engine)
    crossed = [c for c in optimizer.candidates.values() if c.operation.startswith("crossover")]
    assert crossed and optimizer.counters["crossover"] == len(crossed)
    assert all(c.generation >= 2 and len(c.parents) == 2 for c in crossed)
    assert all(c.parents[0] != c.parents[1] for c in crossed)
    assert not any(c.operation.startswith("crossover") for c in optimizer.candidates.values()
                   if c.generation == 1)
    assert any("Version A:" in p and "Version B:" in p for p in prompts)


async def test_crossover_without_a_language_model_exchanges_whole_modules():
    optimizer = OMEGA(crossover_probability=1.0, population_size=4, nb_offspring=2)
    state = {m: {"instructions": None, "examples": []} for m in ("m1", "m2")}
    engine = setup(optimizer, epochs=10, state=state)
    await drive(optimizer, engine, max_rounds=1)
    assert not any(c.operation.startswith("crossover") for c in optimizer.candidates.values())
    a = optimizer.register(Candidate({m: {"instructions": f"A {m}", "examples": []}
                                      for m in ("m1", "m2")}, operation="test")).id
    b = optimizer.register(Candidate({m: {"instructions": f"B {m}", "examples": []}
                                      for m in ("m1", "m2")}, operation="test")).id
    optimizer.population = [a, b]
    await drive(optimizer, engine, max_rounds=1)
    children = [optimizer.candidates[c] for c in optimizer.population[2:]]
    assert children and all(c.operation.startswith("crossover") for c in children)
    for child in children:
        assert sorted(child.parents) == sorted([a, b]) and child.generation == 2
        first, second = (optimizer.candidates[p].state for p in child.parents)
        assert {child.state["m1"]["instructions"][0], child.state["m2"]["instructions"][0]} == {
            "A", "B"}
        assert all(child.state[m] in (first[m], second[m]) for m in ("m1", "m2"))


@pytest.mark.parametrize("embedding_model", [None, FakeEmbeddingModel()])
async def test_dominated_novelty_prunes_the_close_and_worse_member_first(embedding_model):
    optimizer = OMEGA(embedding_model=embedding_model, population_size=2, k_nearest=1,
                      nb_max_examples=0, nb_min_examples=0)
    engine = setup(optimizer, reward_fn=by_instructions)
    best, _near, far = members(optimizer, list(FITNESS))
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.population == [best, far]  # the near copy of a fitter member went
    if embedding_model is not None:
        assert embedding_model.calls == 1 and len(optimizer.extra_state()["embeddings"]) == 2


async def test_truncation_would_have_kept_the_near_copy():
    # Same members with k_nearest large and the far member made slightly worse than the
    # near copy: fitness alone is not what decides, novelty does.
    optimizer = OMEGA(population_size=2, k_nearest=1, nb_max_examples=0, nb_min_examples=0)
    engine = setup(optimizer, reward_fn=by_instructions)
    best, near, far = members(optimizer, list(FITNESS))
    await drive(optimizer, engine, max_rounds=1)
    ranked_by_fitness = sorted([best, near, far], key=lambda c: -optimizer.train_reward(c))
    assert ranked_by_fitness[:2] == [best, near] and near not in optimizer.population


async def test_a_failing_embedding_model_falls_back_to_jaccard_and_is_counted():
    optimizer = OMEGA(embedding_model=FakeEmbeddingModel(fail=True), population_size=2,
                      k_nearest=1, nb_max_examples=0, nb_min_examples=0)
    engine = setup(optimizer, reward_fn=by_instructions)
    best, _near, far = members(optimizer, list(FITNESS))
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.population == [best, far]
    assert optimizer.counters["embedding_failures"] == 1
    assert "embedding service down" in optimizer.last_error


async def test_without_a_language_model_children_carry_few_shot_examples():
    optimizer = OMEGA(population_size=4, seed=1)
    engine = setup(optimizer, epochs=2)
    await drive(optimizer, engine)
    made = [c for c in optimizer.candidates.values() if c.operation != "seed"]
    assert made and all("fewshot generator.examples" in c.operation for c in made)
    assert optimizer.val_reward(optimizer.best().id) == 1.0 > seed_val_reward()


async def test_lm_failures_are_counted_and_never_raise():
    optimizer = OMEGA(language_model=FakeLanguageModel(broken_writer), population_size=4)
    engine = setup(optimizer, epochs=1)
    await drive(optimizer, engine)
    assert optimizer.counters["lm_failures"] >= 1 and "model down" in optimizer.last_error
    assert optimizer.stop_reason == "epochs completed (1)"


async def test_max_lm_calls_counts_mutation_calls():
    lm = FakeLanguageModel(echo_writer)
    optimizer = OMEGA(language_model=lm, population_size=6, nb_offspring=5,
                      budget={"max_lm_calls": 4})
    engine = setup(optimizer, epochs=10)
    engine.lm_calls_per_result = 0
    await drive(optimizer, engine)
    assert optimizer.stop_reason == "max_lm_calls reached (4 >= 4)"
    assert lm.calls == 4 == optimizer.spent.lm_calls


async def test_instruction_mutation_beats_the_seed_on_validation():
    optimizer = OMEGA(language_model=FakeLanguageModel(rule_writer), nb_max_examples=0,
                      nb_min_examples=0, population_size=4)
    engine = setup(optimizer, epochs=2)
    await drive(optimizer, engine)
    assert KEY_PHRASE in optimizer.best().state["generator"]["instructions"]
    assert optimizer.val_reward(optimizer.best().id) == 1.0 > seed_val_reward()
