"""A small deterministic task and a seeded few-shot optimizer for trainer and engine tests."""

import json
from typing import Literal

import pytest

import synaray
from synaray.optimizers import Candidate, Optimizer
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel


class Number(synaray.DataModel):
    q: str


class Label(synaray.DataModel):
    answer: Literal["yes", "no"]


@register_synaray_serializable(package="tests")
def demo_sensitive_handler(messages, schema):
    """Right on multiples of 3 always; on the rest only once the prompt holds >= 2 examples."""
    n = int(json.loads(messages[-1]["content"])["q"])
    n_examples = (len(messages) - 2) // 2
    truth = "no" if n % 3 == 0 else "yes"
    if n % 3 == 0 or n_examples >= 2:
        return {"answer": truth}
    return {"answer": "no"}


@register_synaray_serializable(package="tests")  # Program.load (safe mode) finds it
class DemoSearch(Optimizer):
    """Test optimizer: each generation, new members get 2 random demos from rewarded traces."""

    def __init__(self, population_size=3, **kwargs):
        super().__init__(population_size=population_size, **kwargs)

    def initial_population(self, seed):
        self.pool = []
        return [seed]

    async def evolve(self, batch_ids):
        for cid in self.population:
            for eid in batch_ids:
                row = self.table.get(cid, "train", eid)
                if row and row["reward"] > 0 and row["y_pred"] is not None:
                    x, _ = self.train.fetch([eid])[0]
                    demo = {"inputs": x.get_json(), "outputs": row["y_pred"]}
                    if demo not in self.pool:
                        self.pool.append(demo)
        best = max(self.population, key=lambda c: self.table.mean(c, "train", batch_ids) or 0)
        new = [best]
        while len(new) < self.population_size and len(self.pool) >= 2:
            picks = self.rng.choice(len(self.pool), size=2, replace=False)
            state = {"generator": {"instructions": None,
                                   "examples": [self.pool[int(i)] for i in sorted(picks)]}}
            cand = self.register(Candidate(state, parents=[best], operation="fewshot",
                                           generation=self.generation))
            new.append(cand.id)
        self.population = new

    def extra_state(self):
        return {"pool": self.pool}

    def load_extra_state(self, state):
        self.pool = state["pool"]


def make_data(n):
    xs = [Number(q=str(i)) for i in range(n)]
    ys = [Label(answer="no" if i % 3 == 0 else "yes") for i in range(n)]
    return xs, ys


async def make_program(seed=0, jitter_s=0.0, latency_seed=None, **opt_kwargs):
    lm = FakeLanguageModel(demo_sensitive_handler, jitter_s=jitter_s, seed=latency_seed)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="thirds")
    program.compile(reward="exact_match", optimizer=DemoSearch(seed=seed, **opt_kwargs),
                    metrics=["accuracy"])
    return program


@pytest.fixture
def data():
    return make_data(36)
