"""A few-shot candidate whose prompt overflows the model's context window scores 0 on those
examples, the run goes on, and later demo sets are drawn smaller so that they fit."""

from __future__ import annotations

import pytest

from helpers.openai_stub import StubReply
from helpers.stub_programs import build_thirds_on, thirds_reply
from synaray.lm import LanguageModel
from synaray.lm.circuit_breaker import CircuitBreaker
from synaray.optimizers import Candidate, EvalResult, PopulationSearch, RandomFewShot

from .driver import Failure, make_dataset, setup, thirds

FITS = 3  # a prompt with more demos than this does not fit the context window
OVERFLOW = Failure("LMContextLengthError: openai/m: BadRequestError (HTTP 400): This model's "
                   "maximum context length is 4096 tokens. However, you requested 5012 tokens.")


def overflows_above_fits(state: dict, x: dict, y: dict):
    """`thirds`, but a state showing more than `FITS` demos in a module fails its call."""
    if any(len(m.get("examples") or []) > FITS for m in state.values()):
        return OVERFLOW
    return thirds(state, x, y)


def shown(candidate) -> int:
    return max(len(m.get("examples") or []) for m in candidate.state.values())


@pytest.mark.parametrize("make", [
    lambda: RandomFewShot(nb_min_examples=1, nb_max_examples=8, population_size=6, seed=0),
    lambda: PopulationSearch(nb_min_examples=1, nb_max_examples=8, population_size=6,
                             racing=False, seed=0),
])
async def test_demo_draws_shrink_after_context_overflows(make):
    optimizer = make()
    engine = setup(optimizer, n_train=24, batch_size=6, epochs=3,
                   reward_fn=overflows_above_fits)
    breaker = CircuitBreaker(first_calls=20, window=60, max_failure_rate=0.5)
    while not optimizer.finished:  # the trainer's loop: the breaker sees each batch first
        requests = optimizer.ask()
        results = await engine.evaluate(requests) if requests else []
        breaker.update(results)
        await optimizer.tell(results)

    assert breaker.context_failures > 0  # early candidates did overflow
    assert max(shown(c) for c in optimizer.candidates.values()) > FITS
    assert optimizer.demo_caps["generator"] <= FITS
    last_epoch = [c for c in optimizer.candidates.values()
                  if c.generation >= 2 * optimizer.steps_per_epoch]
    assert last_epoch and all(shown(c) <= FITS for c in last_epoch), \
        sorted(shown(c) for c in last_epoch)
    assert shown(optimizer.best()) <= FITS and optimizer.best_val_reward == 1.0

    # the caps are part of the state: a resumed run keeps drawing small demo sets
    resumed = make()
    resumed.load_state_dict(optimizer.state_dict(), optimizer.train, optimizer.val)
    assert resumed.demo_caps == optimizer.demo_caps


async def test_only_the_module_that_overflowed_is_capped():
    """Two modules with demos; the trace says which one failed (inputs, no outputs)."""
    optimizer = RandomFewShot(nb_max_examples=8)
    state = {"a": {"instructions": None, "examples": [{"inputs": {}, "outputs": {}}] * 5},
             "b": {"instructions": None, "examples": [{"inputs": {}, "outputs": {}}] * 2}}
    setup(optimizer, state=state)
    cid = Candidate(state).id
    trace = [{"module": "a", "inputs": {"q": "1"}, "outputs": {"x": "y"}},
             {"module": "b", "inputs": {"q": "1"}, "outputs": None}]
    await optimizer.tell([EvalResult(cid, "t1", "train", 0.0, error=OVERFLOW.error,
                                     trace=trace, lm_calls=2, lm_failures=1)])
    assert optimizer.demo_caps == {"b": 1}
    # a later overflow with more demos never raises a cap
    optimizer._cap_demos(EvalResult(cid, "t2", "train", 0.0, error=OVERFLOW.error,
                                    trace=trace))
    assert optimizer.demo_caps == {"b": 1}
    for i in range(8):
        optimizer.demos.add("a", {"q": str(i)}, {"x": str(i)}, 1.0)
        optimizer.demos.add("b", {"q": str(i)}, {"x": str(i)}, 1.0)
    assert {len(optimizer._draw_demos("b")) for _ in range(30)} == {1}
    assert max(len(optimizer._draw_demos("a")) for _ in range(30)) > 2


async def test_a_fit_whose_large_demo_sets_overflow_runs_through(openai_stub):
    """End to end on a real `LanguageModel` (a loopback server that answers HTTP 400 "maximum
    context length" to prompts with more than 2 demos): most of the first demo sets
    overflow, more than half of a breaker window of calls, yet the fit finishes, and the
    demo sets drawn late fit."""
    fits = 2
    def reply(path: str, body: dict) -> StubReply:
        demos = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        if demos > fits:
            return StubReply(status=400, body={"error": {
                "message": "This model's maximum context length is 4096 tokens.",
                "code": "context_length_exceeded"}})
        return thirds_reply(path, body)

    openai_stub.handler = reply
    lm = LanguageModel("openai/test", api_base=openai_stub.api_base, cache=False, retries=0)
    program = await build_thirds_on(lm)
    optimizer = RandomFewShot(nb_min_examples=1, nb_max_examples=8, population_size=6,
                              seed=0)
    program.compile(reward="exact_match", optimizer=optimizer)
    train = make_dataset(24, "t")
    xs, ys = zip(*train.fetch(train.ids), strict=True)
    history = await program.fit(list(xs), list(ys), epochs=3, batch_size=6, verbose=False,
                                circuit_breaker={"window": 30})

    overflowed = [b for b in openai_stub.requests if sum(
        1 for m in b["messages"] if m.get("role") == "assistant") > fits]
    assert len(overflowed) > 15
    assert history.history["lm_failures"][-1] >= len(overflowed)
    assert list(optimizer.demo_caps.values()) == [fits]
    last_epoch = [c for c in optimizer.candidates.values()
                  if c.generation >= 2 * optimizer.steps_per_epoch]
    assert last_epoch and all(shown(c) <= fits for c in last_epoch)
    assert optimizer.best_val_reward == 1.0


async def test_swaps_and_crossovers_keep_to_the_demo_cap():
    """A parent from before the cap shows too many demos: swapping one of them or crossing it
    with another keeps the count, so those children are not made (a resample is)."""
    optimizer = PopulationSearch(nb_min_examples=1, nb_max_examples=8, population_size=4,
                                 racing=False, seed=0)
    setup(optimizer, n_train=24, batch_size=6)
    train = make_dataset(24, "t")
    demos = [{"inputs": x.get_json(), "outputs": y.get_json()}
             for x, y in train.fetch(train.ids[:6])]
    for x, y in train.fetch(train.ids):
        optimizer.demos.add("generator", x.get_json(), y.get_json(), 1.0)
    big = optimizer.register(Candidate({"generator": {"instructions": "", "examples": demos}},
                                       operation="test"))
    small = optimizer.register(Candidate({"generator": {"instructions": "x",
                                                        "examples": demos[:2]}},
                                         operation="test"))
    assert optimizer._perturb(big.id) is not None  # no cap yet
    optimizer.demo_caps["generator"] = 3
    assert optimizer._perturb(big.id) is None
    assert optimizer._perturb(small.id) is not None
    ranking = type("R", (), {"front": [small.id], "ranked": [big.id, small.id]})()
    made = [optimizer._crossover(big.id, ranking) for _ in range(10)]
    assert all(m is None or len(m[0]["generator"]["examples"]) <= 3 for m in made)
    state, _, _ = optimizer._resample(big.id)
    assert len(state["generator"]["examples"]) <= 3
