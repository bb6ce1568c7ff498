"""`RandomFewShot`: search over few-shot examples drawn from rewarded predictions."""

from __future__ import annotations

from synaray.optimizers.budget import Budget
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.protocol import TRAIN, Candidate, EvalResult
from synaray.optimizers.strategies.demos import DemoPool
from synaray.optimizers.strategies.few_shot import FewShotSearch
from synaray.optimizers.strategies.knobs import fill_doc
from synaray.optimizers.strategies.mutations import with_examples
from synaray.optimizers.strategies.pareto import rank

__all__ = ["RandomFewShot"]


class RandomFewShot(FewShotSearch, Optimizer):
    """Few-shot search: new members get demos sampled from predictions that earned a reward.

    No LM calls of its own. Every training result with a reward > 0 adds its trace to a
    pool of demos per module (deduplicated by inputs, keeping the best reward). Each
    generation, every member is scored on the same minibatch; the best member (by that
    paired score) is kept and the population is refilled with candidates whose modules get
    k in [`nb_min_examples`, `nb_max_examples`] demos drawn from the pool. Until the pool
    holds a demo, the population is just the program's own state. At each epoch end the
    leading members are scored on the validation set and the best on validation is kept.

    Args:
{{few_shot_args}}
        population_size: members scored per generation (integer >= 1, default 10): the
            kept best plus `population_size - 1` new samples. Cost per generation: up to
            `population_size * batch_size` program runs (pairs already scored are skipped).
{{search_args}}

    Raises:
        ConfigError: a knob out of range, e.g. `nb_min_examples > nb_max_examples`, an
            unknown `sampling`, or `sampling_temperature <= 0`.

    Example:
        >>> optimizer = RandomFewShot(nb_max_examples=2, population_size=4, seed=1)
        >>> optimizer
        <RandomFewShot population=4>
        >>> RandomFewShot.from_config(optimizer.get_config()).get_config()["nb_max_examples"]
        2

        In a program: `program.compile(reward=synaray.rewards.ExactMatch(),
        optimizer=RandomFewShot())`, then `await program.fit(x=..., y=..., epochs=2)`.
    """

    def __init__(self, nb_min_examples: int = 1, nb_max_examples: int = 3,
                 sampling: str = "softmax", sampling_temperature: float = 0.3,
                 population_size: int = 10, seed: int = 0,
                 budget: Budget | dict | None = None, val_top_k: int = 2,
                 use_labels: bool = True,
                 name: str | None = None) -> None:
        super().__init__(nb_min_examples, nb_max_examples, sampling, sampling_temperature,
                         use_labels, population_size=population_size, val_top_k=val_top_k,
                         seed=seed, budget=budget, name=name)

    def initial_population(self, seed: Candidate) -> list[Candidate]:
        self.demos = DemoPool()
        return [seed]

    async def tell(self, results: list[EvalResult]) -> None:
        self._learn(results)
        await super().tell(results)

    async def evolve(self, batch_ids: list[str]) -> None:
        """Keep the best member of this minibatch; refill with freshly sampled demos."""
        members = list(dict.fromkeys(self.population))
        best = rank({cid: self.table.mean(cid, TRAIN, batch_ids) for cid in members})[0]
        population = [best]
        modules = [m for m in self.demos.modules() if m in self.candidates[best].state]
        attempts = 0
        while (modules and self.nb_max_examples > 0 and len(population) < self.population_size
               and attempts < 3 * self.population_size):
            attempts += 1
            child = self._sample_child(self.candidates[best], modules)
            if child.id not in population:
                population.append(child.id)
        self.population = population

    def _sample_child(self, parent: Candidate, modules: list[str]) -> Candidate:
        state, operations = parent.state, []
        for module in modules:
            state, ops = with_examples(state, module, self._draw_demos(module), how="fewshot")
            operations += ops
        return self.register(Candidate(state, parents=[parent.id],
                                       operation="; ".join(operations),
                                       generation=self.generation))

    def extra_state(self) -> dict:
        return self._pool_state()

    def load_extra_state(self, state: dict) -> None:
        self._load_pool_state(state)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.few_shot_config()}


RandomFewShot.__doc__ = fill_doc(RandomFewShot.__doc__)
