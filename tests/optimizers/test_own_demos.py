"""A candidate is never scored on the training examples it shows as demos: the model would
read its own answer in the prompt, and the minibatch score of every candidate whose demos
happen to fall in the minibatch would be inflated (noise in the selection, calls wasted)."""

from __future__ import annotations

import json

import pytest

from synaray.optimizers import PopulationSearch, RandomFewShot

from .driver import SEED_STATE, SyntheticEngine, drive, make_dataset, setup


class RecordingEngine(SyntheticEngine):
    """Remembers every (candidate, split, example) request, with the candidate's shown
    examples at the time it was asked for."""

    def __init__(self, engine: SyntheticEngine, optimizer) -> None:
        super().__init__(engine.reward_fn, engine.datasets)
        self.optimizer = optimizer
        self.asked: list[tuple[str, str, str, frozenset]] = []

    async def evaluate(self, requests):
        for request in requests:
            shown = frozenset(self.optimizer.shown_examples(request.candidate_id))
            self.asked += [(request.candidate_id, request.split, e, shown)
                           for e in request.example_ids]
        return await super().evaluate(requests)


@pytest.mark.parametrize("make", [
    lambda: PopulationSearch(population_size=4, nb_min_examples=4, nb_max_examples=6, seed=2),
    lambda: PopulationSearch(lm_calls=200, seed=5, racing=False),
    lambda: PopulationSearch(population_size=4, nb_min_examples=4, nb_max_examples=6, seed=2,
                             steady_state=True),
    lambda: RandomFewShot(population_size=4, nb_min_examples=4, nb_max_examples=6, seed=1),
])
async def test_no_candidate_is_scored_on_its_own_demos(make):
    optimizer = make()
    engine = RecordingEngine(setup(optimizer, n_train=18, n_val=6, batch_size=6, epochs=3),
                             optimizer)
    await drive(optimizer, engine)
    train = [(c, e, shown) for c, split, e, shown in engine.asked if split == "train"]
    assert train and not [1 for _, e, shown in train if e in shown]
    # the rule had work to do: demo candidates were asked for on minibatches that held
    # some of their own demos, and those were left out
    demo_candidates = {c for c, _, shown in train if shown}
    assert demo_candidates
    left_out = sum(len(optimizer.shown_examples(c) & set(optimizer.train_ids))
                   for c in demo_candidates)
    assert left_out > 0
    assert optimizer.best_val_reward is not None


async def test_without_validation_data_a_candidate_is_validated_without_its_own_demos():
    optimizer = PopulationSearch(population_size=4, nb_min_examples=3, nb_max_examples=3,
                                 seed=4)
    train = make_dataset(12, "t")
    optimizer.setup(json.loads(json.dumps(SEED_STATE)), train, None, batch_size=6, epochs=2)
    engine = SyntheticEngine(setup.__globals__["thirds"], {"train": train})
    await drive(optimizer, engine)
    best = optimizer.best_id
    shown = optimizer.shown_examples(best)
    assert optimizer.best_val_reward is not None
    scored = set(optimizer.table.scored_ids(best, "train"))
    assert not scored & shown
    if shown:  # a demo candidate won: its validation is the rest of the training set
        assert scored == set(optimizer.train_ids) - shown
