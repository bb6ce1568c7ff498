"""The strategy helpers: selectors, demo pool, Pareto front, mutations, reflection, novelty."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from synaray.errors import ConfigError
from synaray.optimizers import EvalResult
from synaray.optimizers.strategies import mutations, novelty, pareto, reflection
from synaray.optimizers.strategies.demos import DemoPool, fresh_results, label_as_output
from synaray.optimizers.strategies.selectors import (
    BestSelector,
    RandomSelector,
    SoftmaxSelector,
    make_selector,
)
from synaray.testing import FakeLanguageModel

from .driver import broken_writer, make_dataset, rule_writer


def _trace(q: str, answer: str, module: str = "gen") -> list[dict]:
    return [{"module": module, "inputs": {"q": q}, "outputs": {"answer": answer}}]


# --- selectors ---------------------------------------------------------------------------
def test_best_selector_takes_highest_scores_ties_by_index():
    assert BestSelector().select([0.5, 0.9, 0.9, 0.1], 3, np.random.default_rng(0)) == [1, 2, 0]


@pytest.mark.parametrize("selector", [RandomSelector(), SoftmaxSelector(0.3), BestSelector()])
def test_selectors_return_distinct_indices_and_cap_k(selector):
    picks = selector.select([0.1, 0.2, 0.3], 10, np.random.default_rng(1))
    assert sorted(picks) == [0, 1, 2]


def test_softmax_selector_prefers_high_scores_at_low_temperature():
    rng = np.random.default_rng(0)
    picks = [SoftmaxSelector(0.05).select([0.0, 1.0], 1, rng)[0] for _ in range(200)]
    assert picks.count(1) > 190


def test_selectors_are_reproducible_with_the_same_rng_seed():
    draw = [SoftmaxSelector(1.0).select([0.1, 0.5, 0.9, 0.3], 2, np.random.default_rng(7))
            for _ in range(2)]
    assert draw[0] == draw[1]


def test_make_selector_rejects_unknown_names():
    with pytest.raises(ConfigError, match=r"argument `sampling`. Received: 'top'. Expected one"):
        make_selector("top")


# --- demo pool -----------------------------------------------------------------------------
def test_demo_pool_keeps_rewarded_traces_dedups_and_keeps_the_best_reward():
    pool = DemoPool()
    assert pool.add_result(EvalResult("c", "e1", "train", 0.0, trace=_trace("1", "x"))) == 0
    assert pool.add_result(EvalResult("c", "e1", "train", 0.5, trace=_trace("1", "a"))) == 1
    assert pool.add_result(EvalResult("d", "e1", "train", 0.4, trace=_trace("1", "b"))) == 0
    assert pool.add_result(EvalResult("d", "e1", "train", 0.9, trace=_trace("1", "c"))) == 1
    assert pool.add_result(EvalResult("d", "e2", "train", 1.0, trace=_trace("2", "d"))) == 1
    demos = pool.demos("gen")
    assert [(d["inputs"]["q"], d["outputs"]["answer"], d["reward"]) for d in demos] == [
        ("1", "c", 0.9), ("2", "d", 1.0)]


def test_labelled_demo_with_accepted_answers_shows_the_first_as_a_string():
    pool = DemoPool()
    label = {"answer": ["Denver Broncos", "Broncos"]}
    # a wrong prediction (reward 0) still gives the labelled demo, shaped as the output
    assert pool.add_result(EvalResult("c", "e1", "train", 0.0, trace=_trace("1", "Panthers")),
                           label) == 1
    assert pool.demos("gen")[0]["outputs"] == {"answer": "Denver Broncos"}
    assert label_as_output({"answer": ["a"], "n": [1, 2]}, {"answer": "x", "n": [3]}) == {
        "answer": "a", "n": [1, 2]}


def test_demo_pool_skips_modules_without_outputs():
    pool = DemoPool()
    trace = [{"module": "a", "inputs": {"q": "1"}, "outputs": None}, *_trace("1", "y", "b")]
    pool.add_result(EvalResult("c", "e1", "train", 1.0, trace=trace))
    assert pool.modules() == ["b"]


def test_demo_pool_sample_excludes_and_round_trips():
    pool = DemoPool()
    for i in range(4):
        pool.add("gen", {"q": str(i)}, {"answer": "no"}, 1.0)
    exclude = [{"inputs": {"q": "0"}, "outputs": {}}]
    picks = pool.sample("gen", 10, BestSelector(), np.random.default_rng(0), exclude=exclude)
    assert [p["inputs"]["q"] for p in picks] == ["1", "2", "3"]
    assert set(picks[0]) == {"inputs", "outputs"}
    assert DemoPool.from_json(pool.to_json()).to_json() == pool.to_json()


def test_fresh_results_skip_known_pairs_and_other_splits():
    from synaray.optimizers import ScoreTable

    table = ScoreTable()
    table.add(EvalResult("c", "e1", "train", 1.0))
    results = [EvalResult("c", "e2", "train", 1.0), EvalResult("c", "e1", "train", 0.0),
               EvalResult("a", "e3", "train", 0.0), EvalResult("c", "e4", "val", 1.0)]
    assert [(r.candidate_id, r.example_id) for r in fresh_results(table, results)] == [
        ("a", "e3"), ("c", "e2")]


# --- pareto --------------------------------------------------------------------------------
def test_quantiles_follow_pbt_sizes_capped_at_half():
    assert pareto.quantiles(["a"], 0.5) == ([], [])
    assert pareto.quantiles(list("abcd"), 0.25) == (["a"], ["d"])
    assert pareto.quantiles(list("abcde"), 0.5) == (["a", "b"], ["d", "e"])
    assert pareto.quantiles(list("abcdefgh"), 0.25) == (["a", "b"], ["g", "h"])


def test_rank_puts_missing_scores_last_and_keeps_order_on_ties():
    assert pareto.rank({"a": 0.5, "b": None, "c": 0.9, "d": 0.5}) == ["c", "a", "d", "b"]


def test_pareto_front_keeps_unique_winners_and_drops_redundant_ones():
    scores = {"a": {"e1": 1.0, "e2": 1.0, "e3": 0.0, "e4": 0.0},
              "b": {"e1": 1.0, "e2": 0.0, "e3": 0.0, "e4": 0.0},
              "c": {"e1": 0.0, "e2": 0.0, "e3": 0.0, "e4": 0.3},
              "d": {"e1": 0.0, "e2": 0.0, "e3": 0.0, "e4": 0.0}}
    ranked = ["a", "b", "c", "d"]
    assert pareto.pareto_front(scores, ranked) == ["a", "c"]


def test_pareto_front_keeps_one_of_two_identical_members_the_better_ranked():
    scores = {"a": {"e1": 1.0}, "b": {"e1": 1.0}}
    assert pareto.pareto_front(scores, ["b", "a"]) == ["b"]


def test_pareto_front_uses_only_examples_every_member_shares():
    scores = {"a": {"e1": 1.0, "e2": 0.0}, "b": {"e1": 0.0, "e2": 1.0, "e3": 1.0}}
    assert pareto.shared_examples(scores) == ["e1", "e2"]
    assert pareto.pareto_front(scores, ["b", "a"]) == ["b", "a"]


# --- mutations -----------------------------------------------------------------------------
STATE_A = {"m1": {"instructions": "A1", "examples": [{"inputs": {"q": "1"}, "outputs": {}}]},
           "m2": {"instructions": "A2", "examples": []}}
STATE_B = {"m1": {"instructions": "B1", "examples": []},
           "m2": {"instructions": "B2", "examples": [{"inputs": {"q": "2"}, "outputs": {}}]}}


def test_mutations_are_pure_and_describe_themselves():
    before = copy.deepcopy(STATE_A)
    new, ops = mutations.with_examples(STATE_A, "m2", [{"inputs": {"q": "9"}, "outputs": {}}])
    assert new["m2"]["examples"][0]["inputs"] == {"q": "9"} and ops == [
        "resample m2.examples (0 -> 1 demos)"]
    new, ops = mutations.swap_example(STATE_A, "m1", 0, {"inputs": {"q": "7"}, "outputs": {},
                                                         "reward": 1.0})
    assert new["m1"]["examples"] == [{"inputs": {"q": "7"}, "outputs": {}}]
    assert ops == ["perturb m1.examples (swapped demo 0)"]
    new, ops = mutations.swap_example(STATE_A, "m2", 0, {"inputs": {"q": "7"}, "outputs": {}})
    assert len(new["m2"]["examples"]) == 1 and "added" in ops[0]
    assert STATE_A == before


def test_crossover_takes_each_module_from_one_parent():
    genes = mutations.crossover_genes(STATE_A, STATE_B)
    assert genes == [("m1", None), ("m2", None)]
    child, ops = mutations.crossover(STATE_A, STATE_B, [("m2", None)], names=("a", "b"))
    assert child == {"m1": STATE_A["m1"], "m2": STATE_B["m2"]}
    assert ops == ["crossover a x b (m2 <- b)"]


def test_single_module_crossover_exchanges_instructions_or_examples():
    a, b = {"m": STATE_A["m1"]}, {"m": STATE_B["m1"]}
    assert mutations.crossover_genes(a, b) == [("m", "instructions"), ("m", "examples")]
    for seed in range(10):
        from_b = mutations.draw_crossover(mutations.crossover_genes(a, b),
                                          np.random.default_rng(seed))
        assert len(from_b) == 1
        child, _ = mutations.crossover(a, b, from_b)
        assert child not in (a, b)


def test_draw_crossover_needs_two_genes():
    assert mutations.draw_crossover([("m", None)], np.random.default_rng(0)) == []


# --- reflection ----------------------------------------------------------------------------
def test_failure_log_notes_only_shortfalls():
    log = reflection.FailureLog()
    assert not log.add(EvalResult("c", "e1", "train", 1.0))
    assert log.add(EvalResult("c", "e2", "train", 0.5))
    assert log.add(EvalResult("c", "e3", "train", 1.0, error="boom"))
    assert [n["example_id"] for n in log.notes("c")] == ["e2", "e3"]
    assert reflection.FailureLog.from_json(log.to_json()).notes("c") == log.notes("c")


def test_failure_cases_use_the_module_trace_and_the_expected_output():
    data = make_dataset(3, "t")
    notes = [{"example_id": "t1", "reward": 0.0, "error": None, "y_pred": {"answer": "no"},
              "trace": _trace("1", "no", "gen")}]
    cases = reflection.failure_cases(notes, "gen", data.fetch(["t1"]))
    assert cases == [{"inputs": {"q": "1"}, "outputs": {"answer": "no"},
                      "expected": {"answer": "yes"}, "reward": 0.0, "error": None}]
    other = reflection.failure_cases(notes, "other", data.fetch(["t1"]))
    assert other[0]["inputs"] == {"q": "1"} and other[0]["outputs"] == {"answer": "no"}


async def test_propose_instructions_returns_text_and_usage():
    lm = FakeLanguageModel(rule_writer)
    messages = reflection.reflection_messages("gen", "Old.", [])
    text, error, trace = await reflection.propose_instructions(lm, messages)
    assert text.startswith("Answer no") and error is None and trace.lm_calls == 1


PARAGRAPH = ("The Lower Rhine flows through North Rhine-Westphalia. Its banks are usually "
             "heavily populated and industrialized, in particular the agglomerations Cologne, "
             "Duesseldorf and Ruhr area.")


async def test_propose_instructions_rejects_a_copy_of_the_cases_shown():
    cases = [{"inputs": {"context": PARAGRAPH, "question": "Where?"},
              "outputs": {"answer": "Cologne, Duesseldorf and the Ruhr area"},
              "expected": {"answer": "Ruhr area"}, "reward": 0.2, "error": None}]
    # the current instructions may be kept almost as they are: only the cases count
    old = "Answer with a short span copied from the paragraph, nothing else."
    messages = reflection.reflection_messages("gen", old, cases)
    copier = FakeLanguageModel(lambda m, s: {"instructions": PARAGRAPH[:120]})
    text, error, _ = await reflection.propose_instructions(copier, messages, cases)
    assert text is None and "copies the cases" in error
    keeper = FakeLanguageModel(lambda m, s: {"instructions": old + " Keep it short."})
    text, error, _ = await reflection.propose_instructions(keeper, messages, cases)
    assert error is None and text.endswith("Keep it short.")
    writer = FakeLanguageModel(lambda m, s: {
        "instructions": "Copy the shortest phrase of the paragraph that answers the question."})
    text, error, _ = await reflection.propose_instructions(writer, messages, cases)
    assert error is None and text.startswith("Copy the shortest")


async def test_copy_check_sees_whole_cases_even_when_they_quote_the_prompt_markers():
    # a code task's input may hold ">>>" (the prompt's quote marker): the check gets the
    # cases themselves, not the prompt text after the last marker
    code = "# " + PARAGRAPH + "\n>>> sorted(xs)"
    cases = [{"inputs": {"code": code}, "outputs": {"answer": "x"},
              "expected": {"answer": "y"}, "reward": 0.0, "error": None}]
    messages = reflection.reflection_messages("gen", "Explain the code.", cases)
    copier = FakeLanguageModel(lambda m, s: {"instructions": PARAGRAPH[:120]})
    text, error, _ = await reflection.propose_instructions(copier, messages, cases)
    assert text is None and "copies the cases" in error


async def test_propose_instructions_never_raises_on_failure():
    text, error, trace = await reflection.propose_instructions(
        FakeLanguageModel(broken_writer), [{"role": "user", "content": "x"}])
    assert text is None and "model down" in error and trace.lm_calls == 1

    class Raising:
        async def __call__(self, *args, **kwargs):
            raise ValueError("bad")

    text, error, _ = await reflection.propose_instructions(Raising(), [])
    assert text is None and error == "ValueError: bad"


# --- novelty -------------------------------------------------------------------------------
def test_distances():
    assert novelty.jaccard_distance("a b", "b a") == 0.0
    assert novelty.jaccard_distance("a b", "c d") == 1.0
    assert novelty.jaccard_distance("", "") == 0.0
    assert novelty.cosine_distance([1, 0], [1, 0]) == 0.0
    assert novelty.cosine_distance([1, 0], [-1, 0]) == 1.0


def test_dominated_novelty_prunes_close_and_worse_first():
    # b is a near copy of the fitter a; c is worse than both but far from them.
    distances = np.array([[0.0, 0.05, 0.9], [0.05, 0.0, 0.9], [0.9, 0.9, 0.0]])
    scores = novelty.dominated_novelty([0.9, 0.6, 0.3], distances, k=2)
    assert scores[0] == float("inf") and scores[1] == pytest.approx(0.05)
    assert scores[2] == pytest.approx(0.9)
    assert novelty.dns_survivors(["a", "b", "c"], [0.9, 0.6, 0.3], distances, 2, 2) == ["a", "c"]


async def test_embed_texts_accepts_dicts_and_objects_and_reports_errors():
    class Obj:
        def __init__(self):
            self.embeddings = [[1.0, 0.0]]

    async def as_object(texts):
        return Obj()

    async def wrong_count(texts):
        return {"embeddings": []}

    vectors, error, _ = await novelty.embed_texts(as_object, ["x"])
    assert vectors == [[1.0, 0.0]] and error is None
    vectors, error, _ = await novelty.embed_texts(wrong_count, ["x"])
    assert vectors is None and "wrong number" in error
