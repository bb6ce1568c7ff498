"""RandomFewShot: demos sampled from rewarded traces, no LM calls."""

from __future__ import annotations

import pytest

from synaray.errors import ConfigError
from synaray.optimizers import RandomFewShot
from synaray.optimizers.strategies.demos import demo_key

from .driver import drive, seed_val_reward, setup


def zero(state, x, y):
    return 0.0, {"answer": "?"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nb_min_examples": 3, "nb_max_examples": 2},
     "Invalid value for argument `nb_min_examples`. Received: 3. Expected an integer between "
     "0 and `nb_max_examples` (2)."),
    ({"sampling": "greedy"},
     "Invalid value for argument `sampling`. Received: 'greedy'. Expected one of "
     "['best', 'random', 'softmax']."),
    ({"sampling_temperature": 0},
     "Invalid value for argument `sampling_temperature`. Received: 0. Expected a number > 0"),
    ({"nb_max_examples": -1}, "Invalid value for argument `nb_max_examples`. Received: -1."),
])
def test_bad_arguments_name_the_argument_and_the_value(kwargs, message):
    with pytest.raises(ConfigError) as info:
        RandomFewShot(**kwargs)
    assert str(info.value).startswith(message)


async def test_population_is_just_the_seed_before_any_demo_exists():
    optimizer = RandomFewShot(population_size=5, use_labels=False)
    engine = setup(optimizer, reward_fn=zero)
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.population == [optimizer.best().id]
    assert len(optimizer.demos) == 0


async def test_new_members_get_k_demos_from_the_pool_and_the_best_is_kept():
    optimizer = RandomFewShot(nb_min_examples=1, nb_max_examples=3, population_size=6)
    engine = setup(optimizer, batch_size=12)
    await drive(optimizer, engine, max_rounds=1)
    seed_id = optimizer.best().id
    assert optimizer.population[0] == seed_id
    assert len(optimizer.population) == 6
    pool_keys = {demo_key(d) for d in optimizer.demos.demos("generator")}
    for cid in optimizer.population[1:]:
        child = optimizer.candidates[cid]
        examples = child.state["generator"]["examples"]
        assert 1 <= len(examples) <= 3
        assert {demo_key(e) for e in examples} <= pool_keys
        assert len({demo_key(e) for e in examples}) == len(examples)
        assert child.parents == [seed_id] and child.operation.startswith("fewshot")
        assert child.generation == 1


async def test_the_best_member_by_paired_score_survives_the_next_generation():
    optimizer = RandomFewShot(nb_min_examples=1, nb_max_examples=3, population_size=6)
    engine = setup(optimizer)
    await drive(optimizer, engine, max_rounds=2)
    batch = optimizer.history[-1]
    assert batch["reward"] == 1.0
    kept = optimizer.candidates[optimizer.population[0]]
    assert len(kept.state["generator"]["examples"]) >= 2


async def test_demos_only_come_from_training_results_with_a_reward():
    optimizer = RandomFewShot(population_size=3)
    engine = setup(optimizer, epochs=1)
    await drive(optimizer, engine)
    demos = optimizer.demos.demos("generator")
    assert demos and all(d["reward"] > 0 for d in demos)
    assert all(d["example_id"].startswith("t") for d in demos)
    assert all(int(d["inputs"]["q"]) % 3 == 0 or d["outputs"]["answer"] == "yes" for d in demos)


async def test_best_sampling_takes_the_highest_reward_demos():
    def graded(state, x, y):
        return int(x["q"]) / 100 + 0.01, {"answer": y["answer"]}

    optimizer = RandomFewShot(nb_min_examples=2, nb_max_examples=2, sampling="best",
                              population_size=2, use_labels=False)
    engine = setup(optimizer, reward_fn=graded, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)
    child = optimizer.candidates[optimizer.population[1]]
    best_per_output: dict = {}
    for d in optimizer.demos.demos("generator"):
        key = d["outputs"]["answer"]
        best_per_output[key] = max(best_per_output.get(key, 0.0), d["reward"])
    assert len(best_per_output) == 2  # demos are drawn one per distinct output
    picked = [int(e["inputs"]["q"]) / 100 + 0.01 for e in child.state["generator"]["examples"]]
    assert sorted(picked) == sorted(best_per_output.values())


async def test_search_beats_the_seed_on_validation():
    optimizer = RandomFewShot(population_size=4, seed=3)
    engine = setup(optimizer, epochs=2)
    await drive(optimizer, engine)
    assert optimizer.stop_reason == "epochs completed (2)"
    assert optimizer.val_reward(optimizer.best().id) > seed_val_reward() + 0.5
    assert optimizer.spent.lm_calls == len(engine.seen)  # no LM calls of its own


async def test_labelled_demos_exist_even_when_every_prediction_is_wrong():
    optimizer = RandomFewShot(population_size=3)
    engine = setup(optimizer, reward_fn=zero)
    await drive(optimizer, engine, max_rounds=1)
    demos = optimizer.demos.demos("generator")
    assert demos, "the expected outputs of the minibatch should have become demos"
    for demo in demos:
        _, y = optimizer.train.fetch([demo["example_id"]])[0]
        assert demo["outputs"] == y.get_json() and demo["reward"] == 1.0


def test_demos_are_drawn_across_distinct_outputs():
    import numpy as np

    from synaray.optimizers.strategies.demos import DemoPool
    from synaray.optimizers.strategies.selectors import make_selector

    pool = DemoPool()
    for i in range(10):
        pool.add("gen", {"q": str(i)}, {"answer": "yes"}, 1.0)
    pool.add("gen", {"q": "x"}, {"answer": "no"}, 0.5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        picks = pool.sample("gen", 2, make_selector("softmax"), rng)
        assert {p["outputs"]["answer"] for p in picks} == {"yes", "no"}
