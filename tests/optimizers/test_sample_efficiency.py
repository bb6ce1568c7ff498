"""PopulationSearch's sample-efficiency options: budget presets, the diverse first generation,
grounded instruction proposals and racing on validation (all opt-in)."""

from __future__ import annotations

import json

import pytest

from synaray.errors import ConfigError
from synaray.optimizers import EvalRequest, EvalResult, PopulationSearch
from synaray.optimizers.strategies.presets import plan_search
from synaray.optimizers.strategies.racing import racing_rung, racing_rungs
from synaray.testing import FakeLanguageModel

from .driver import drive, echo_writer, setup
from .test_population_search import members, table_reward


# --- budget presets ---------------------------------------------------------------------
def test_the_plan_follows_the_data_at_hand():
    small = plan_search(150, n_train=6, n_val=4)
    assert small.minibatch_size == 6 and small.val_size == 4  # capped by the data
    light, medium = plan_search(150, 30, 30), plan_search(600, 100, 100)
    assert light.minibatch_size < medium.minibatch_size
    assert light.val_size == 30 and medium.val_size == 100
    assert light.demo_sets == light.population_size - 1
    assert plan_search(150, 30, 0).promote_k == 0  # no validation data: no promotion
    # two modules: each run costs two calls, so the same budget buys half the runs
    assert plan_search(600, 100, 100, n_modules=2).minibatch_size < medium.minibatch_size


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"auto": "fast"}, "auto"),
    ({"auto": "light", "lm_calls": 100}, "lm_calls"),
    ({"lm_calls": 5}, "lm_calls"),
    ({"demo_sets": -1}, "demo_sets"),
    ({"racing": "yes"}, "racing"),
])
def test_bad_preset_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ConfigError, match=f"Invalid value for argument `{argument}`. Received"):
        PopulationSearch(**kwargs)


async def test_a_preset_sizes_the_search_and_stays_within_its_budget():
    optimizer = PopulationSearch(lm_calls=150, seed=1)
    engine = setup(optimizer, n_train=24, n_val=12, batch_size=6, epochs=1)
    plan = optimizer.plan
    assert optimizer.batch_size == plan.minibatch_size == 10  # fit's batch_size replaced
    assert optimizer.population_size == plan.population_size
    assert optimizer.budget.max_lm_calls == 150 and optimizer.racing
    assert (optimizer.nb_min_examples, optimizer.nb_max_examples) == (4, 8)
    await drive(optimizer, engine)
    assert optimizer.spent.lm_calls <= 150
    assert optimizer.epoch >= 1 or optimizer.stop_reason.startswith("max_lm_calls")
    assert optimizer.best_val_reward == 1.0  # demos teach the rule (see driver.thirds)


async def test_explicit_knobs_win_over_the_preset():
    optimizer = PopulationSearch(auto="light", population_size=3, promote_k=1,
                                 nb_min_examples=2, nb_max_examples=2, racing=False)
    setup(optimizer, n_train=24, n_val=12)
    assert optimizer.population_size == 3 and optimizer.demo_sets == 2
    assert optimizer.promote_k == 1 and not optimizer.racing
    assert optimizer.get_config()["population_size"] == 3
    assert optimizer.get_config()["demo_sets"] is None  # the preset's choice, kept as such


def test_a_preset_without_a_budget_of_its_own_keeps_the_given_limits():
    optimizer = PopulationSearch(auto="light", budget={"max_lm_calls": 90,
                                                       "max_generations": 4})
    setup(optimizer)
    assert optimizer.budget.max_lm_calls == 90 and optimizer.budget.max_generations == 4


def test_a_preset_validates_on_a_seeded_subset_of_the_validation_data():
    optimizer = PopulationSearch(lm_calls=60, seed=2)  # 60 runs: val_size 12 of 30
    setup(optimizer, n_train=24, n_val=30)
    again = PopulationSearch(lm_calls=60, seed=2)
    setup(again, n_train=24, n_val=30)
    assert len(optimizer.val_ids) == optimizer.plan.val_size == 12
    assert optimizer.val_ids == again.val_ids
    assert set(optimizer.val_ids) <= set(optimizer.val.ids)


# --- the diverse first generation ------------------------------------------------------
async def test_the_first_generation_holds_demo_sets_across_distinct_answers():
    optimizer = PopulationSearch(demo_sets=3, population_size=4, nb_min_examples=2,
                                 nb_max_examples=3, seed=0)
    engine = setup(optimizer, n_train=24, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)  # the program alone on the first minibatch
    seed, *children = optimizer.population
    assert seed == optimizer.best_id and len(children) == 3
    for cid in children:
        examples = optimizer.candidates[cid].state["generator"]["examples"]
        assert 2 <= len(examples) <= 3
        assert {e["outputs"]["answer"] for e in examples} == {"yes", "no"}
    assert optimizer.counters["demo_sets"] == 3
    # the module reads the program's inputs: every training example became a labelled demo
    assert optimizer.demos.size("generator") == 24
    assert optimizer.spent.lm_calls == 6  # without running the program on them


def test_a_module_that_does_not_read_the_program_inputs_gets_no_unseen_labels():
    optimizer = PopulationSearch(demo_sets=2)
    setup(optimizer, n_train=6, batch_size=3)
    direct = EvalResult("c", "t1", "train", 1.0, trace=[
        {"module": "first", "inputs": {"q": "1"}, "outputs": {"answer": "yes"}},
        {"module": "second", "inputs": {"notes": "..."}, "outputs": {"answer": "yes"}}])
    assert optimizer._direct_modules([direct]) == {"first": {"answer": "yes"}}


async def test_legacy_settings_still_grow_one_child_at_a_time():
    optimizer = PopulationSearch(population_size=4, seed=0)
    engine = setup(optimizer, n_train=24, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.counters["demo_sets"] == 0 and optimizer.plan is None


def _proposer(answer):
    prompts = []

    def handler(messages, schema):
        prompts.append(messages[-1]["content"])
        return {"instructions": answer(messages)}

    return handler, prompts


async def test_grounded_proposals_see_a_data_summary_and_become_candidates():
    text = "Say no when the number is a multiple of 3, else say yes."
    handler, prompts = _proposer(lambda messages: text)
    optimizer = PopulationSearch(language_model=FakeLanguageModel(handler), demo_sets=1,
                                 instruction_proposals=1, population_size=3, seed=0)
    engine = setup(optimizer, n_train=24, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)
    assert len(prompts) == 1
    assert 'Answers seen (24 examples): "yes" (16), "no" (8).' in prompts[0]
    proposed = [optimizer.candidates[cid] for cid in optimizer.population
                if optimizer.candidates[cid].state["generator"]["instructions"] == text]
    assert len(proposed) == 1 and proposed[0].operation.startswith("propose generator")
    assert optimizer.spent.lm_calls == 6 + 1  # the proposal's call is billed


async def test_a_proposal_that_copies_the_shown_examples_is_rejected():
    def copy_an_example(messages):
        content = messages[-1]["content"]
        return content[content.index("Example 1"):content.index("\n\nWrite the instr")]
    handler, _ = _proposer(copy_an_example)
    optimizer = PopulationSearch(language_model=FakeLanguageModel(handler),
                                 instruction_proposals=1, population_size=2, seed=0)
    engine = setup(optimizer, n_train=24, batch_size=6)
    await drive(optimizer, engine, max_rounds=1)
    assert optimizer.counters["proposal_failures"] == 1
    assert "copies the cases" in optimizer.last_reflection_error
    assert optimizer.population == [optimizer.best_id]


# --- racing on validation --------------------------------------------------------------
async def _score(optimizer, engine, cid, ids):
    request = EvalRequest(cid, optimizer.candidates[cid].state, tuple(ids), "val")
    for result in await engine.evaluate([request]):
        optimizer.table.add(result)
    optimizer._refresh_best()


async def test_racing_stops_a_weak_candidate_after_the_first_rung():
    rewards = {"A": [1, 1, 1, 0], "B": [0, 0, 0, 0], "C": [1, 1, 1, 1]}
    optimizer = PopulationSearch(racing=True, promote_k=2)
    engine = setup(optimizer, n_val=15, reward_fn=table_reward(rewards))
    a, b, c = members(optimizer, "ABC")
    await _score(optimizer, engine, a, optimizer.val_ids)
    assert optimizer.best_id == a
    rung = racing_rung(optimizer.val_ids)
    assert len(rung) == 5
    optimizer._promoted = [b, c]
    assert optimizer.promotion_ids(b) == rung and optimizer.promotion_ids(c) == rung
    await _score(optimizer, engine, b, rung)
    await _score(optimizer, engine, c, rung)
    assert optimizer.promotion_ids(b) == []  # below A on the rung: raced out
    assert [p.id for p in optimizer.promotions()] == [c]
    second = racing_rungs(optimizer.val_ids)[1]
    assert optimizer.promotion_ids(c) == second  # kept up: the next rung follows
    requests = optimizer.ask()
    val_requests = [r for r in requests if r.split == "val"]
    assert [(r.candidate_id, len(r.example_ids)) for r in val_requests] == [(c, 3)]
    await _score(optimizer, engine, c, second[len(rung):])
    assert optimizer.promotion_ids(c) == optimizer.val_ids  # and then the rest


async def test_without_racing_promotions_go_straight_to_the_whole_validation_set():
    optimizer = PopulationSearch(promote_k=1)
    engine = setup(optimizer, n_val=15, reward_fn=table_reward({"A": [1, 1, 1, 1]}))
    (a,) = members(optimizer, "A")
    optimizer._promoted = [a]
    assert optimizer.promotion_ids(a) == optimizer.val_ids
    assert [len(r.example_ids) for r in optimizer.ask() if r.split == "val"] == [15]
    del engine


async def test_a_preset_search_resumes_with_its_plan():
    def factory():
        return PopulationSearch(lm_calls=120, seed=4)
    whole = factory()
    engine = setup(whole, n_train=24, n_val=12)
    await drive(whole, engine)
    part = factory()
    engine = setup(part, n_train=24, n_val=12)
    await drive(part, engine, max_rounds=3)
    saved = json.loads(json.dumps(part.state_dict()))
    resumed = factory()
    resumed.load_state_dict(saved, engine.datasets["train"], engine.datasets["val"])
    assert resumed.plan == part.plan and resumed.population_size == part.population_size
    assert resumed.val_ids == part.val_ids
    await drive(resumed, engine)
    assert resumed.state_dict() == whole.state_dict()


async def test_a_preset_keeps_calls_to_validate_its_leaders():
    """The bench's split (30 train / 30 validation, 150 calls): the budget must not run out
    before any candidate is validated (the best would then be the unvalidated seed)."""
    optimizer = PopulationSearch(lm_calls=150, seed=0)
    engine = setup(optimizer, n_train=30, n_val=30)
    await drive(optimizer, engine)
    assert optimizer.spent.lm_calls <= 150
    assert optimizer.val_reward(optimizer.best_id) is not None


def demos_help(state, x, y):
    """Demos help (more help more), but never all the way: the best keeps failures to
    reflect on."""
    shown = sum(len(m.get("examples") or []) for m in state.values())
    right = int(x["q"]) % 10 < (4 if shown == 0 else 6 + shown // 4)
    return (1.0 if right else 0.0), {"answer": y["answer"] if right else "?"}


# --- the race of a preset (generation by generation, with validation data) ---------------
async def test_a_preset_races_its_first_generation_on_validation():
    """The program is validated whole (the incumbent); every member of the diverse first
    generation is scored on the first rung of validation, not on a training minibatch, and
    only those that keep up with the best go further."""
    optimizer = PopulationSearch(lm_calls=150, seed=0)
    engine = setup(optimizer, n_train=30, n_val=30)
    seed = optimizer.best_id
    await drive(optimizer, engine, max_rounds=1)  # the program alone on the first minibatch
    assert optimizer.races_on_validation and optimizer.population == []
    challengers = [c for c in optimizer._promoted if c != seed]
    assert seed in optimizer._promoted and len(challengers) == optimizer.demo_sets
    requests = optimizer.ask()
    assert all(r.split == "val" for r in requests)
    sizes = {r.candidate_id: len(r.example_ids) for r in requests}
    assert sizes[seed] == 30  # the incumbent: all of validation at once
    first = len(racing_rungs(optimizer.val_ids)[0])
    assert {sizes[c] for c in challengers} == {first}
    await drive(optimizer, engine)
    assert optimizer.spent.lm_calls <= 150
    assert optimizer.best_val_reward == 1.0  # demos teach the rule (see driver.thirds)
    # the race saved calls: not every challenger was scored on all of validation
    val_scored = [len(optimizer.table.scored_ids(c, "val")) for c in challengers]
    assert min(val_scored) < 30


async def _first_rung_of_abc(lm_calls, reward_fn):
    """A preset race with members A (the best, validated whole), B and C (on the first
    rung, promoted)."""
    optimizer = PopulationSearch(lm_calls=lm_calls, seed=0)
    engine = setup(optimizer, n_train=30, n_val=30, reward_fn=reward_fn)
    a, b, c = members(optimizer, "ABC")
    optimizer.best_id = a
    await _score(optimizer, engine, a, optimizer.val_ids)
    rungs = racing_rungs(optimizer.val_ids)
    for cid in (b, c):
        await _score(optimizer, engine, cid, rungs[0])
    optimizer._promoted = [b, c]
    return optimizer, engine, (a, b, c), rungs


async def test_a_challenger_behind_the_best_leaves_the_race():
    rewards = {"A": [1, 1, 1, 1], "B": [0, 0, 0, 0], "C": [1, 1, 1, 1]}
    optimizer, engine, (_, b, c), rungs = await _first_rung_of_abc(150, table_reward(rewards))
    assert optimizer.promotion_ids(b) == [] and optimizer.promotion_ids(c) == rungs[1]
    await _score(optimizer, engine, c, rungs[1][len(rungs[0]):])
    assert optimizer.promotion_ids(c) == optimizer.val_ids
    # children join the race only as far as the calls left are expected to pay for them
    optimizer.spent.lm_calls = 150 - 10
    assert optimizer._children_affordable([c]) == 0
    optimizer.spent.lm_calls = 0
    assert optimizer._children_affordable([]) >= 5


async def test_a_challenger_one_example_behind_stays_in_the_race():
    """Trailing the best by one example of a rung is noise, not evidence: the challenger goes
    on (at 600 calls on the bench, challengers at 12/15 were stopped behind a best at 13/15
    and never validated); two examples behind with no example of its own ahead is out."""
    wrong = {"A": set(), "B": {1000}, "C": {1000, 1001}}

    def reward(state, x, y):
        name = state["generator"]["instructions"]
        value = 0.0 if int(x["q"]) in wrong.get(name, {int(x["q"])}) else 1.0
        return value, {"answer": y["answer"]}

    optimizer, _, (a, b, c), rungs = await _first_rung_of_abc(600, reward)
    assert optimizer.table.mean(b, "val", rungs[0]) < optimizer.table.mean(a, "val", rungs[0])
    assert optimizer.promotion_ids(b) == rungs[1]
    assert optimizer.promotion_ids(c) == []


async def test_later_children_come_from_the_race_winner_not_the_program():
    """While the first generation races against the program, no child of the program is
    made (it would only be more of the first generation, and take the calls the winner's
    children need: at 600 calls on the bench the winner got no child at all)."""
    optimizer = PopulationSearch(language_model=FakeLanguageModel(echo_writer), lm_calls=600,
                                 seed=0)
    engine = setup(optimizer, n_train=30, n_val=30)
    seed = optimizer.best_id
    await drive(optimizer, engine)
    later = [c for c in optimizer.candidates.values() if c.generation >= 2]
    assert later, "the calls left after the first race pay for children"
    assert all(seed not in c.parents for c in later)
    winners = {c.id for c in optimizer.candidates.values()
               if c.generation == 1 and optimizer.val_reward(c.id) == 1.0}
    assert winners and all(set(c.parents) & (winners | {x.id for x in later}) for c in later)


async def test_the_race_winner_runs_its_minibatch_before_its_children_are_made():
    """Reflective rewrites need the best's failures on a training minibatch: the winner of
    the first race runs one before any child of it is made (at 600 calls on the bench the
    children came first, took the calls, and none was a rewrite)."""
    optimizer = PopulationSearch(language_model=FakeLanguageModel(echo_writer), lm_calls=600,
                                 seed=0)
    engine = setup(optimizer, n_train=30, n_val=30, reward_fn=demos_help)
    await drive(optimizer, engine)
    rewrites = [c for c in optimizer.candidates.values() if c.operation.startswith("reflect")]
    assert optimizer.counters["reflect"] >= 1 and rewrites
    for child in rewrites:  # rewritten from the failures of the parent's minibatch
        assert optimizer.table.scored_ids(child.parents[0], "train")


async def test_first_generation_proposals_keep_the_demos_of_a_demo_set():
    """A proposal without demos raced against demo sets and never passed the first rung on
    the bench: each proposal rewrites the instructions of one of the first demo sets."""
    optimizer = PopulationSearch(language_model=FakeLanguageModel(echo_writer), lm_calls=150,
                                 seed=0)
    engine = setup(optimizer, n_train=30, n_val=30)
    await drive(optimizer, engine, max_rounds=1)
    first = [optimizer.candidates[c] for c in optimizer._promoted[1:]]
    proposals = [c for c in first if c.operation.startswith("propose")]
    demo_sets = [c for c in first if c.operation.startswith("demo set")]
    assert proposals and demo_sets
    for proposal in proposals:
        (base,) = proposal.parents
        assert base in {c.id for c in demo_sets}
        module = proposal.state["generator"]
        assert module["examples"] == optimizer.candidates[base].state["generator"]["examples"]
        assert module["instructions"] != optimizer.candidates[base].state["generator"][
            "instructions"]
    del engine


async def test_a_small_race_validates_a_challenger_and_spends_nothing_on_minibatches():
    """150 calls, 30 / 30 examples, a proposer LM (reflection possible): the calls go to the
    race, and the leading challenger's validation is paid for before more rungs are (on the
    bench the budget once ran out with four challengers half-validated and the program's
    minibatches taking 20 calls: the result was the program itself)."""
    optimizer = PopulationSearch(language_model=FakeLanguageModel(echo_writer), lm_calls=150,
                                 seed=0)
    engine = setup(optimizer, n_train=30, n_val=30, reward_fn=demos_help)
    seed = optimizer.best_id
    await drive(optimizer, engine)
    assert optimizer.spent.lm_calls <= 150
    validated = [c for c in optimizer.candidates if optimizer.val_reward(c) is not None]
    assert seed in validated and len(validated) >= 2
    assert optimizer.best_id != seed and optimizer.best_val_reward > optimizer.val_reward(seed)
    train_runs = sum(len(optimizer.table.scored_ids(c, "train")) for c in optimizer.candidates)
    assert train_runs == optimizer.plan.minibatch_size  # the program's first minibatch only
