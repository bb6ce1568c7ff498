"""PopulationSearch: select, exploit with a Pareto front, explore, promote, budgets."""

from __future__ import annotations

import pytest

from synaray.errors import ConfigError
from synaray.optimizers import Candidate, PopulationSearch
from synaray.testing import FakeLanguageModel

from .driver import (
    KEY_PHRASE,
    SEED_STATE,
    broken_writer,
    drive,
    echo_writer,
    rule_writer,
    seed_val_reward,
    setup,
)

# Per-member reward on examples with q % 4 == 0, 1, 2, 3 (members keyed by instructions).
EXPLOIT = {"A": [1, 1, 1, 1], "B": [1, 1, 1, 0], "C": [1, 1, 0, 0], "D": [1, 0, 0, 0]}
PARETO = {"A": [1, 1, 1, 0], "B": [1, 1, 0, 0], "C": [1, 0, 0, 0], "D": [0, 0, 0, 0.5]}


def table_reward(table):
    def reward(state, x, y):
        row = table.get(state["generator"]["instructions"])
        value = float(row[int(x["q"]) % 4]) if row else 0.5
        return value, {"answer": y["answer"]}
    return reward


def members(optimizer, names):
    ids = []
    for name in names:
        state = {"generator": {"instructions": name, "examples": []}}
        ids.append(optimizer.register(Candidate(state, operation="test")).id)
    optimizer.population = ids
    return ids


def only(op, **kwargs):
    probabilities = {"resample": 0.0, "reflection": 0.0, "crossover": 0.0}
    if op != "perturb":
        probabilities["reflection" if op == "reflect" else op] = 1.0
    return PopulationSearch(**{f"{k}_probability": v for k, v in probabilities.items()},
                            **kwargs)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"quantile_fraction": 0.6}, "quantile_fraction"),
    ({"quantile_fraction": 0}, "quantile_fraction"),
    ({"reflection_probability": 1.5}, "reflection_probability"),
    ({"reflection_probability": 0.5, "crossover_probability": 0.3,
      "resample_probability": 0.3}, "resample_probability"),
    ({"promote_k": -1}, "promote_k"),
    ({"reflection_examples": 0}, "reflection_examples"),
    ({"nb_min_examples": 5, "nb_max_examples": 4}, "nb_min_examples"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ConfigError, match=f"Invalid value for argument `{argument}`. Received"):
        PopulationSearch(**kwargs)


# --- select / exploit ----------------------------------------------------------------------
async def test_bottom_quantile_is_replaced_by_an_explored_copy_of_the_top():
    optimizer = only("resample", population_size=4, quantile_fraction=0.25)
    engine = setup(optimizer, n_train=8, batch_size=8, reward_fn=table_reward(EXPLOIT))
    a, b, c, d = members(optimizer, "ABCD")
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer._ranking == [a, b, c, d]
    assert optimizer.population[:3] == [a, b, c] and d not in optimizer.population
    child = optimizer.candidates[optimizer.population[3]]
    assert child.parents == [a] and child.operation.startswith("resample generator.examples")
    assert child.state["generator"]["instructions"] == "A"


async def test_pareto_front_members_survive_in_the_bottom_quantile():
    optimizer = only("resample", population_size=4, quantile_fraction=0.25)
    engine = setup(optimizer, n_train=8, batch_size=8, reward_fn=table_reward(PARETO))
    ids = members(optimizer, "ABCD")
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer._ranking[-1] == ids[3]  # D has the lowest mean...
    # ...but is alone best on q % 4 == 3: it stays, and C (dominated by A) gives its slot
    assert optimizer.population[:3] == [ids[0], ids[1], ids[3]]
    assert ids[2] not in optimizer.population and len(optimizer.population) == 4


async def test_a_population_all_on_the_front_still_makes_room_for_a_child():
    # each member is alone best on one residue class: all four are on the front
    table = {"A": [1, 0, 0, 0], "B": [0, 1, 0, 0], "C": [0, 0, 1, 0], "D": [0, 0, 0, 0.9]}
    optimizer = only("resample", population_size=4, quantile_fraction=0.25)
    engine = setup(optimizer, n_train=8, batch_size=8, reward_fn=table_reward(table))
    ids = members(optimizer, "ABCD")
    await drive(optimizer, engine, max_rounds=1)
    assert ids[3] not in optimizer.population and len(optimizer.population) == 4
    assert optimizer.population[:3] == ids[:3]


async def test_without_the_front_the_same_bottom_member_would_go():
    table = dict(PARETO, D=[0, 0, 0, 0])
    optimizer = only("resample", population_size=4, quantile_fraction=0.25)
    engine = setup(optimizer, n_train=8, batch_size=8, reward_fn=table_reward(table))
    ids = members(optimizer, "ABCD")
    await drive(optimizer, engine, max_rounds=1)
    assert ids[3] not in optimizer.population and len(optimizer.population) == 4


# --- explore -------------------------------------------------------------------------------
async def test_resample_draws_a_module_examples_from_rewarded_traces():
    optimizer = only("resample", population_size=4, nb_min_examples=2, nb_max_examples=2)
    engine = setup(optimizer, batch_size=12)
    await drive(optimizer, engine, max_rounds=1)
    seed = optimizer.population[0]
    pool = [(d["inputs"], d["outputs"]) for d in optimizer.demos.demos("generator")]
    for cid in optimizer.population[1:]:
        child = optimizer.candidates[cid]
        examples = child.state["generator"]["examples"]
        assert len(examples) == 2 and all((e["inputs"], e["outputs"]) in pool for e in examples)
        assert child.parents == [seed] and child.operation.startswith("resample")
    assert optimizer.counters["resample"] == 3


async def test_perturb_swaps_or_adds_a_single_example():
    def demos_help(state, x, y):
        return 0.2 + 0.3 * len(state["generator"]["examples"]), {"answer": y["answer"]}

    optimizer = only("perturb", population_size=3)
    engine = setup(optimizer, batch_size=12, reward_fn=demos_help)
    await drive(optimizer, engine, max_rounds=1)
    children = [optimizer.candidates[c] for c in optimizer.population[1:]]
    assert children and all(len(c.state["generator"]["examples"]) == 1 for c in children)
    assert all(c.operation == "perturb generator.examples (added demo 0)" for c in children)
    await drive(optimizer, engine, max_rounds=1)
    new = [optimizer.candidates[c] for c in optimizer.population
           if optimizer.candidates[c].generation == 2]
    assert new
    for child in new:
        parent = optimizer.candidates[child.parents[0]]
        how = "swapped" if parent.state["generator"]["examples"] else "added"
        assert child.operation == f"perturb generator.examples ({how} demo 0)"
        assert len(child.state["generator"]["examples"]) == 1
    assert any("swapped" in c.operation for c in new)


async def test_perturb_never_makes_a_child_below_nb_min_examples():
    def demos_help(state, x, y):
        return 0.2 + 0.1 * len(state["generator"]["examples"]), {"answer": y["answer"]}

    optimizer = only("perturb", population_size=3, nb_min_examples=3, nb_max_examples=4)
    engine = setup(optimizer, batch_size=12, reward_fn=demos_help)
    await drive(optimizer, engine, max_rounds=2)
    # from the empty seed one added demo cannot reach 3: perturb makes nothing
    assert len(optimizer.population) == 1 and optimizer.counters["perturb"] == 0


async def test_reflection_puts_the_proposed_instructions_in_the_child():
    seen = []

    def writer(messages, schema):
        seen.append(messages)
        return rule_writer(messages, schema)

    optimizer = only("reflect", language_model=FakeLanguageModel(writer), population_size=3,
                     reflection_examples=2)
    engine = setup(optimizer, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)
    child = optimizer.candidates[optimizer.population[1]]
    assert child.state["generator"]["instructions"] == rule_writer([], None)["instructions"]
    assert child.operation.startswith("reflect generator.instructions")
    assert child.operation.endswith("from 2 failures")
    prompt = seen[0][1]["content"]
    assert prompt.count("Case ") == 2 and 'Expected program output: {"answer": "yes"}' in prompt
    assert 'Step output: {"answer": "no"}' in prompt and "reward 0" in prompt
    assert seen[0][0]["role"] == "system"
    assert optimizer.spent.lm_calls == len(engine.seen) + len(seen)


async def test_a_failed_reflection_falls_back_to_another_operation_and_is_counted():
    optimizer = PopulationSearch(language_model=FakeLanguageModel(broken_writer),
                                 reflection_probability=0.98, resample_probability=0.02,
                                 crossover_probability=0.0, population_size=4)
    engine = setup(optimizer, batch_size=12)
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.counters["reflection_failures"] == 3  # one per child, none raised
    assert "model down" in optimizer.last_reflection_error
    assert len(optimizer.population) == 4
    assert all(optimizer.candidates[c].operation.startswith("resample")
               for c in optimizer.population[1:])


async def test_crossover_takes_each_module_from_one_of_two_parents():
    def two_modules(state, x, y):
        return (1.0 if state["m1"]["instructions"] == "A1" else 0.5), {"answer": "no"}

    optimizer = only("crossover", population_size=3, quantile_fraction=0.5)
    state = {"m1": {"instructions": "A1", "examples": []},
             "m2": {"instructions": "A2", "examples": []}}
    engine = setup(optimizer, state=state, reward_fn=two_modules)
    other = {"m1": {"instructions": "B1", "examples": []},
             "m2": {"instructions": "B2", "examples": []}}
    a = optimizer.population[0]
    b = optimizer.register(Candidate(other, operation="test")).id
    optimizer.population = [a, b]
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.population[0] == a and b not in optimizer.population  # b was exploited
    child = optimizer.candidates[optimizer.population[1]]
    assert child.parents == [a, b] and child.operation.startswith(f"crossover {a} x {b}")
    assert (child.state["m1"], child.state["m2"]) in ((state["m1"], other["m2"]),
                                                      (other["m1"], state["m2"]))
    assert {"id": child.id, "parents": [a, b], "operation": child.operation,
            "generation": 1} in optimizer.lineage


# --- promotion and validation --------------------------------------------------------------
async def test_leaders_are_promoted_to_validation_mid_epoch():
    optimizer = only("resample", population_size=4, promote_k=2, nb_min_examples=2)
    engine = setup(optimizer, batch_size=6, epochs=1)
    await drive(optimizer, engine, max_rounds=1)
    for _ in range(2):
        leaders = optimizer._ranking[:2]
        pending = [c for c in leaders if optimizer.val_reward(c) is None]
        assert pending and [c.id for c in optimizer.promotions()] == pending
        requests = optimizer.ask()  # the next generation's minibatch, plus the promotions
        assert {r.candidate_id for r in requests if r.split == "val"} == set(pending)
        assert all(len(r.example_ids) == 12 for r in requests if r.split == "val")
        await optimizer.tell(await engine.evaluate(requests))
        assert all(optimizer.val_reward(c) is not None for c in leaders)
    assert optimizer.generation == 3 and optimizer.epoch == 0 and optimizer.phase == "train"
    assert optimizer.val_reward(optimizer.best().id) == 1.0


async def test_promote_k_zero_validates_only_at_epoch_end():
    optimizer = only("resample", population_size=4, promote_k=0)
    engine = setup(optimizer, batch_size=6, epochs=1)
    await drive(optimizer, engine, max_rounds=3)
    assert not any(split == "val" for _, split, _ in engine.seen)


# --- budgets -------------------------------------------------------------------------------
async def test_max_generations_stops_the_search():
    optimizer = PopulationSearch(population_size=3, budget={"max_generations": 2})
    engine = setup(optimizer, epochs=10)
    await drive(optimizer, engine)
    assert optimizer.stop_reason == "max_generations reached (2 >= 2)"
    assert optimizer.generation == 2 and len(optimizer.history) == 2


async def test_max_lm_calls_counts_the_reflection_calls():
    lm = FakeLanguageModel(echo_writer)
    optimizer = only("reflect", language_model=lm, population_size=6,
                     budget={"max_lm_calls": 3})
    engine = setup(optimizer, epochs=10)
    engine.lm_calls_per_result = 0  # only the optimizer's own calls count here
    await drive(optimizer, engine)
    assert optimizer.stop_reason == "max_lm_calls reached (3 >= 3)"
    assert lm.calls == 3 and optimizer.spent.lm_calls == 3 and optimizer.generation == 1
    assert optimizer.spent.tokens == 6 * 10 + 3 * 20  # the batch's results, then 3 calls


async def test_target_reward_stops_the_search_once_validation_reaches_it():
    optimizer = only("resample", population_size=4, nb_min_examples=2,
                     budget={"target_reward": 1.0})
    engine = setup(optimizer, epochs=5)
    await drive(optimizer, engine)
    assert optimizer.stop_reason == "target_reward reached (1 >= 1)"
    assert optimizer.epoch == 0 and optimizer.val_reward(optimizer.best().id) == 1.0


# --- the search improves a program -----------------------------------------------------------
async def test_demos_alone_beat_the_seed_on_validation():
    optimizer = PopulationSearch(population_size=4, seed=5)
    engine = setup(optimizer, epochs=2)
    await drive(optimizer, engine)
    assert optimizer.val_reward(optimizer.best().id) == 1.0 > seed_val_reward()


async def test_reflection_alone_beats_the_seed_on_validation():
    optimizer = PopulationSearch(language_model=FakeLanguageModel(rule_writer),
                                 nb_max_examples=0, nb_min_examples=0, population_size=4)
    engine = setup(optimizer, epochs=2)
    await drive(optimizer, engine)
    best = optimizer.best()
    assert KEY_PHRASE in best.state["generator"]["instructions"]
    assert best.state["generator"]["examples"] == [] and best.operation.startswith("reflect")
    assert optimizer.val_reward(best.id) == 1.0 > seed_val_reward()
    assert SEED_STATE["generator"]["instructions"] is None  # the seed was not mutated
