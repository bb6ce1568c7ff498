"""PopulationSearch(steady_state=True) and run_steady_state: the asynchronous search.

Members move on as their own minibatch is scored (no generation barrier); the search is a
function of the seed and the order of completions, which the state records, so replaying
that order (from scratch or from a checkpoint taken mid-flight) gives the same search.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from synaray.errors import ConfigError
from synaray.optimizers import PopulationSearch
from synaray.optimizers.strategies.racing import racing_rung
from synaray.testing import FakeLanguageModel
from synaray.trainers.steady_state import run_steady_state

from . import driver


def steady(**kwargs) -> PopulationSearch:
    kwargs.setdefault("language_model", FakeLanguageModel(driver.echo_writer))
    kwargs.setdefault("population_size", 4)
    kwargs.setdefault("seed", 3)
    return PopulationSearch(steady_state=True, **kwargs)


async def drive_shuffled(optimizer, engine, order_seed: int, capacity: int = 3) -> list:
    """Keep up to `capacity` requests out; complete them in a seeded random order."""
    rng = random.Random(order_seed)
    out: list = []
    while not optimizer.finished:
        out += optimizer.ask()
        if not out:
            break
        batch = out[:capacity]
        request = batch[rng.randrange(len(batch))]
        out.remove(request)
        await optimizer.tell(await engine.evaluate([request]))
    return out


async def replay(optimizer, engine, completions: list, start: int = 0) -> None:
    """Complete the outstanding requests in the recorded order `completions[start:]`."""
    for key in completions[start:]:
        optimizer.ask()
        entry = [o for o in optimizer.steady.outstanding if o["key"] == key]
        assert entry, f"the replay did not ask for {key}"
        request = optimizer._steady_request(key, entry[0]["ids"])
        await optimizer.tell(await engine.evaluate([request]))
    optimizer.ask()  # after the last completion: nothing left to ask, the search ends


def snapshot(optimizer) -> str:
    state = optimizer.state_dict()
    return json.dumps({k: state[k] for k in ("table", "candidates", "lineage", "history",
                                             "population", "best_id", "extra", "spent")},
                      sort_keys=True)


async def test_steady_search_improves_and_logs_its_completions():
    optimizer = steady()
    engine = driver.setup(optimizer, epochs=2)
    await drive_shuffled(optimizer, engine, order_seed=1)
    assert optimizer.finished and optimizer.stop_reason == "epochs completed (2)"
    assert optimizer.best_val_reward == 1.0 > driver.seed_val_reward()
    log = optimizer.steady.completions
    assert len(log) == len(optimizer.state_dict()["extra"]["steady"]["completions"]) > 8
    assert not optimizer.steady.outstanding
    assert optimizer.generation >= 4 and len(optimizer.history) == optimizer.generation


async def test_no_member_waits_for_the_slowest():
    """One member's request is held back: the others keep being told, replaced and asked
    again (a generation-synchronous search would ask nothing new until it is back)."""
    optimizer = steady(population_size=4)
    engine = driver.setup(optimizer, n_train=48, epochs=1)
    await optimizer.tell(await engine.evaluate(optimizer.ask()))  # the seed's minibatch
    requests = optimizer.ask()
    train = [r for r in requests if r.split == "train"]
    assert len(train) == 4
    held = train[0]
    out = [r for r in requests if r is not held]
    told = 0
    for _ in range(12):
        assert held not in optimizer.ask()  # asked once only
        request = out.pop(0)
        await optimizer.tell(await engine.evaluate([request]))
        told += 1
        out += optimizer.ask()
    assert told == 12 and optimizer.steady.is_out("train", held.candidate_id)
    assert len(optimizer.candidates) > 5  # children were made while `held` was out
    steps = optimizer.steady.steps
    assert max(steps.values()) >= 3 > steps[held.candidate_id]


@pytest.mark.parametrize("order_seed", [1, 2])
async def test_same_seed_and_completion_order_same_search(order_seed):
    first = steady()
    await drive_shuffled(first, driver.setup(first), order_seed=order_seed)
    again = steady()
    await replay(again, driver.setup(again), first.steady.completions)
    assert again.finished and snapshot(again) == snapshot(first)


async def test_a_checkpoint_taken_mid_flight_resumes_identically():
    first = steady(auto="light", population_size=None)
    await drive_shuffled(first, driver.setup(first, n_train=30, n_val=12), order_seed=5)
    log = first.steady.completions
    half = steady(auto="light", population_size=None)
    engine = driver.setup(half, n_train=30, n_val=12)
    await replay(half, engine, log[:len(log) // 2])
    half.ask()  # requests handed out, not told: they are outstanding in the checkpoint
    state = json.loads(json.dumps(half.state_dict()))
    assert state["extra"]["steady"]["outstanding"]
    resumed = PopulationSearch.from_config(state["config"])
    resumed.load_state_dict(state, engine.datasets["train"], engine.datasets["val"])
    await replay(resumed, engine, log, start=len(log) // 2)
    assert resumed.finished and snapshot(resumed) == snapshot(first)


async def test_presets_racing_and_the_diverse_first_generation_work_in_steady_mode():
    optimizer = steady(auto="light", population_size=None)
    engine = driver.setup(optimizer, n_train=30, n_val=30)
    await drive_shuffled(optimizer, engine, order_seed=4)
    assert optimizer.counters["demo_sets"] >= 2 and optimizer.counters["proposals"] >= 1
    assert optimizer.spent.lm_calls <= 150
    assert optimizer.stop_reason.startswith(("max_lm_calls", "target", "epochs"))
    assert optimizer.best_val_reward == 1.0
    first = len(racing_rung(optimizer.val_ids))
    rung = [k for k in optimizer.steady.completions if k[0] == "val" and k[2] == first]
    assert rung, "racing scores promoted candidates on a first rung of validation"


async def test_budget_and_target_reward_stop_a_steady_search():
    optimizer = steady(budget={"max_generations": 2})
    await drive_shuffled(optimizer, driver.setup(optimizer, epochs=5), order_seed=1)
    assert optimizer.stop_reason.startswith("max_generations") and optimizer.generation == 2
    optimizer = steady(budget={"target_reward": 1.0})
    await drive_shuffled(optimizer, driver.setup(optimizer, epochs=5), order_seed=1)
    assert optimizer.stop_reason.startswith("target_reward")


async def test_steady_state_round_trips_in_the_config_and_rejects_bad_values():
    optimizer = steady()
    assert PopulationSearch.from_config(optimizer.get_config()).steady_state is True
    assert "steady_state" not in PopulationSearch().get_config()
    with pytest.raises(ConfigError, match="steady_state"):
        PopulationSearch(steady_state="yes")
    auto = PopulationSearch(steady_state="auto")
    assert auto.get_config()["steady_state"] == "auto" and auto.steady_state is False

    from synaray.engines import LocalEngine, RayEngine

    # what the engine prefers, read by fit: the optimizer never sees the engine (nor Ray)
    auto.choose_loop(RayEngine.prefers_steady_state)
    assert auto.steady_state is True and auto.get_config()["steady_state"] is True
    local = PopulationSearch(steady_state="auto")
    local.choose_loop(LocalEngine.prefers_steady_state)
    assert local.steady_state is False and "steady_state" not in local.get_config()


async def test_a_generation_synchronous_loop_can_drive_a_steady_search():
    """Until the loop runs where the optimizer lives (the Ray actor), a driver that asks,
    evaluates everything asked and tells it all drives a steady search correctly."""
    optimizer = steady()
    rounds = await driver.drive(optimizer, driver.setup(optimizer, epochs=2))
    assert optimizer.stop_reason == "epochs completed (2)" and rounds > 4
    assert optimizer.best_val_reward == 1.0 and not optimizer.steady.outstanding


async def test_run_steady_state_keeps_capacity_in_flight_and_tells_each_completion():
    optimizer = steady(population_size=6)
    engine = driver.setup(optimizer, n_train=36, epochs=1)
    running, peak, rng = 0, 0, random.Random(0)

    async def evaluate(requests):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(rng.random() * 0.005)
            return await engine.evaluate(requests)
        finally:
            running -= 1

    told = []
    await run_steady_state(optimizer, evaluate, capacity=3,
                           on_told=lambda request, results: told.append(request))
    assert optimizer.finished and peak == 3
    assert len(told) == len(optimizer.steady.completions)


async def test_run_steady_state_stops_on_request_and_propagates_errors():
    optimizer = steady()
    engine = driver.setup(optimizer)
    told = []
    await run_steady_state(optimizer, engine.evaluate, capacity=2,
                           should_stop=lambda: len(told) >= 3,
                           on_told=lambda request, results: told.append(request))
    assert len(told) == 3 and not optimizer.finished

    async def broken(requests):
        raise RuntimeError("evaluator lost")

    fresh = steady()
    driver.setup(fresh)
    with pytest.raises(RuntimeError, match="evaluator lost"):
        await run_steady_state(fresh, broken, capacity=2)
    assert not fresh.finished
    with pytest.raises(ConfigError, match="capacity"):
        await run_steady_state(optimizer, engine.evaluate, capacity=0)


async def test_an_ask_checks_what_changed_not_the_whole_training_set():
    """After a round, every member is asked its next minibatch; the ask reads the members'
    minibatches and the validation of the promotions (and, with a preset, the budget
    reserve) once: not each member against all 1,200 training ids, nor the reserve again
    for each member (either would pass far more ids to `unscored`)."""
    for knobs in ({}, {"lm_calls": 100_000}):
        optimizer = steady(population_size=6, **knobs)
        engine = driver.setup(optimizer, n_train=1200, n_val=60, batch_size=6, epochs=1)
        for _ in range(8):  # whole rounds: every member is idle at the next ask
            await optimizer.tell(await engine.evaluate(optimizer.ask()))
        checked, unscored = [], optimizer.unscored

        def counting(cid, split, ids, unscored=unscored, checked=checked):
            ids = list(ids)
            checked.append(len(ids))
            return unscored(cid, split, ids)

        optimizer.unscored = counting
        requests = optimizer.ask()
        assert len({r.candidate_id for r in requests if r.split == "train"}) == 6
        # racing also ranks, once per ask, every candidate that finished a rung (21
        # candidates x a 15-id rung here): still far below the whole-set checks (7,476)
        assert sum(checked) < 1_200, knobs


async def test_the_count_of_training_examples_left_agrees_with_the_score_table():
    """Members left with no training example to run stop being asked; that is read from a
    count kept as results are told (the demos a member shows left out), which must agree
    with `unscored` on the whole training set at every ask, and after a resume (the count
    is rebuilt from the table)."""
    optimizer = steady(demo_sets=2, population_size=4)
    engine = driver.setup(optimizer, n_train=12, n_val=6, batch_size=4, epochs=4)
    rng, out, done, told = random.Random(3), [], 0, 0
    while not optimizer.finished:
        for cid in dict.fromkeys(optimizer.population):
            exact = len(optimizer.unscored(cid, "train", optimizer.train_ids))
            assert optimizer._unscored_train_count(cid) == exact
            done += exact == 0
        out += optimizer.ask()
        if not out:
            break
        request = out.pop(rng.randrange(min(3, len(out))))
        await optimizer.tell(await engine.evaluate([request]))
        told += 1
        if told == 10:  # resume from a checkpoint; the requests out are asked again
            state = json.loads(json.dumps(optimizer.state_dict()))
            optimizer = PopulationSearch.from_config(state["config"])
            optimizer.load_state_dict(state, engine.datasets["train"], engine.datasets["val"])
            out = []
    assert optimizer.stop_reason == "epochs completed (4)" and told > 10
    assert done > 0, "some member was scored on every training example it can be"
