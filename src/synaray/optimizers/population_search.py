"""`PopulationSearch`: population-based training for prompts (DESIGN §4), the flagship.

One generation, in the order of DESIGN §4 (each a named step below):

1. `_select`: every member was scored on the same minibatch (the base asks for that), so
   members are ranked by their paired minibatch score.
2. `_exploit`: members of the bottom quantile are replaced by copies of members of the
   top quantile, except those on the per-example Pareto front (a member that is best on
   some example nobody else covers survives even with a low mean).
3. `_explore`: each copy, and each new member while the population grows, is perturbed by
   one operation drawn by probability: resample a module's few-shot examples from rewarded
   traces, swap one example, rewrite a module's instructions with an LM that sees this
   minibatch's failures (reflective mutation), or take each module from one of two parents
   (crossover). An operation that cannot apply (no demos, no LM, a failed LM call) gives
   way to another one.
4. `_promote`: the leading members not yet validated are scored on the whole validation
   set during the next generation, so the best on validation is known mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synaray.errors import ConfigError
from synaray.optimizers.budget import Budget
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.protocol import TRAIN, Candidate, EvalResult, candidate_id
from synaray.optimizers.strategies.demos import DemoPool, draw_examples, fresh_results
from synaray.optimizers.strategies.knobs import (
    check_few_shot,
    check_int,
    check_number,
    check_probability,
    fill_doc,
)
from synaray.optimizers.strategies.mutations import (
    crossover,
    crossover_genes,
    draw_crossover,
    swap_example,
    with_examples,
    with_instructions,
)
from synaray.optimizers.strategies.pareto import exploit_losers, pareto_front, quantiles, rank
from synaray.optimizers.strategies.reflection import (
    FailureLog,
    calls_left,
    propose_instructions,
    reflection_messages,
    sample_cases,
)
from synaray.saving import deserialize_object, serialize_object

__all__ = ["PopulationSearch"]

OPERATIONS = ("resample", "perturb", "reflect", "crossover")
# What an operation made: (new state, readable operations, parent ids).
Made = tuple[dict, list[str], list[str]]


@dataclass
class _Generation:
    """What the explore step of one generation needs to know (never stored)."""

    batch_ids: list[str]
    ranked: list[str]
    front: list[str]


class PopulationSearch(Optimizer):
    """Population-based search over instructions and few-shot examples (DESIGN §4).

    See the module docstring for one generation's steps. Members are compared on the same
    minibatch (paired scores); the bottom quantile copies the top quantile unless it holds
    part of the per-example Pareto front; copies and new members are explored by resampling
    or swapping demos, by reflective mutation of instructions, or by crossover; leading
    members are promoted to the validation set, and the best on validation is kept.

    Args:
        language_model: the model that rewrites instructions in reflective mutation; None
            disables reflection (its probability is shared by the other operations).
        population_size: members scored per generation (integer >= 1, default 8). The
            population starts from the program alone and grows by explored children.
            Cost per generation: up to `population_size * batch_size` program runs.
        quantile_fraction: share of the population in the top and in the bottom quantile
            (in (0, 0.5], default 0.25; a quantile holds `ceil(n * fraction)` members, at
            most half the population). Higher replaces more members per generation.
        reflection_probability: chance that an explored child comes from reflective
            mutation (in [0, 1], default 0.4). Each costs one call of `language_model`,
            counted in the budget.
        crossover_probability: chance of crossover with a second member, preferably from
            the Pareto front (in [0, 1], default 0.1). No LM call.
        resample_probability: chance of resampling all examples of one module from the demo
            pool (in [0, 1], default 0.25). The remaining probability, `1 -` the three
            above, is that of swapping a single example; the three must sum to <= 1.
{{few_shot_args}}
        reflection_examples: failing examples of the minibatch shown to the LM per
            reflection (integer >= 1, default 4); each lengthens the reflection prompt.
        promote_k: leading members (by this generation's paired score) promoted to the full
            validation set when not yet validated (integer >= 0, default 2; 0 disables
            promotion, as does the absence of validation data). Each promotion costs one
            program run per validation example.
{{search_args}}

    Raises:
        ConfigError: a knob out of range (the message names it and the value received).

    Example:
        >>> search = PopulationSearch(population_size=6, quantile_fraction=0.5, seed=3)
        >>> search
        <PopulationSearch population=6>
        >>> PopulationSearch.from_config(search.get_config()).quantile_fraction
        0.5
    """

    def __init__(self, language_model: Any = None, population_size: int = 8,
                 quantile_fraction: float = 0.25, reflection_probability: float = 0.4,
                 crossover_probability: float = 0.1, resample_probability: float = 0.25,
                 nb_min_examples: int = 1, nb_max_examples: int = 4,
                 sampling: str = "softmax", sampling_temperature: float = 0.3,
                 reflection_examples: int = 4, promote_k: int = 2, seed: int = 0,
                 budget: Budget | dict | None = None, val_top_k: int = 2,
                 use_labels: bool = True,
                 name: str | None = None) -> None:
        super().__init__(population_size=population_size, val_top_k=val_top_k, seed=seed,
                         budget=budget, name=name)
        self.use_labels = use_labels
        check_number("quantile_fraction", quantile_fraction, 0.0, 0.5, low_inclusive=False)
        for knob, value in (("reflection_probability", reflection_probability),
                            ("crossover_probability", crossover_probability),
                            ("resample_probability", resample_probability)):
            check_probability(knob, value)
        total = reflection_probability + crossover_probability + resample_probability
        if total > 1.0 + 1e-9:
            raise ConfigError(
                f"Invalid value for argument `resample_probability`. Received: "
                f"{resample_probability!r}. Expected reflection_probability + "
                f"crossover_probability + resample_probability <= 1 (the sum is {total:g}).")
        self._selector = check_few_shot(nb_min_examples, nb_max_examples, sampling,
                                        sampling_temperature)
        self.language_model = language_model
        self.quantile_fraction = quantile_fraction
        self.reflection_probability = reflection_probability
        self.crossover_probability = crossover_probability
        self.resample_probability = resample_probability
        self.nb_min_examples = nb_min_examples
        self.nb_max_examples = nb_max_examples
        self.sampling = sampling
        self.sampling_temperature = sampling_temperature
        self.reflection_examples = check_int("reflection_examples", reflection_examples, 1)
        self.promote_k = check_int("promote_k", promote_k, 0)
        self._reset_search_state()

    def _reset_search_state(self) -> None:
        self.demos = DemoPool()
        self.failures = FailureLog()
        self.counters = {**{op: 0 for op in OPERATIONS}, "reflection_failures": 0}
        self.last_reflection_error: str | None = None
        self._ranking: list[str] = []
        self._promoted: list[str] = []
        # Lineage detail: child id -> the bottom member whose slot it took (exploit copy).
        self.exploited: dict[str, str] = {}

    @property
    def operation_probabilities(self) -> dict[str, float]:
        """The probability of each explore operation (before unavailable ones drop out)."""
        perturb = 1.0 - (self.reflection_probability + self.crossover_probability
                         + self.resample_probability)
        return {"resample": self.resample_probability, "perturb": max(0.0, perturb),
                "reflect": self.reflection_probability,
                "crossover": self.crossover_probability}

    # --- hooks ---------------------------------------------------------------------------
    def initial_population(self, seed: Candidate) -> list[Candidate]:
        self._reset_search_state()
        return [seed]

    async def tell(self, results: list[EvalResult]) -> None:
        batch = set(self._batch) if self.phase == TRAIN else set()
        for result in fresh_results(self.table, results):
            self.demos.add_result(result, self.label_of(result.example_id))
            if result.example_id in batch:
                self.failures.add(result)
        await super().tell(results)

    async def evolve(self, batch_ids: list[str]) -> None:
        """One generation: select, exploit (keeping the Pareto front), explore, promote."""
        ranked = self._select(batch_ids)
        front = pareto_front(self._per_example(ranked), ranked)
        generation = _Generation(batch_ids, ranked, front)
        self._ranking = ranked
        population = await self._exploit(generation)
        await self._grow(population, generation)
        self.population = population
        self._promoted = self._promote(ranked)
        self.failures.clear()

    def promotions(self) -> list[Candidate]:
        return [self.candidates[cid] for cid in self._promoted if self.val_reward(cid) is None]

    def val_candidates(self) -> list[Candidate]:
        """Pending promotions, then the leaders of the last generation's ranking."""
        if not self._ranking:
            return super().val_candidates()
        ids = [c.id for c in self.promotions()] + self._ranking[:self.val_top_k]
        return [self.candidates[cid] for cid in dict.fromkeys(ids)]

    # --- the steps of a generation ------------------------------------------------------
    def _select(self, batch_ids: list[str]) -> list[str]:
        members = list(dict.fromkeys(self.population))
        return rank({cid: self.table.mean(cid, TRAIN, batch_ids) for cid in members})

    def _per_example(self, members: list[str]) -> dict[str, dict[str, float]]:
        scores = {}
        for cid in members:
            ids = self.table.scored_ids(cid, TRAIN)
            scores[cid] = {e: float(r) for e, r in zip(ids, self.table.rewards(cid, TRAIN, ids),
                                                       strict=True)}
        return scores

    async def _exploit(self, generation: _Generation) -> list[str]:
        """Bottom-quantile members off the front give their slot to explored top members."""
        top, bottom = quantiles(generation.ranked, self.quantile_fraction)
        losers = exploit_losers(generation.ranked, bottom, generation.front)
        population = [cid for cid in generation.ranked if cid not in losers]
        for loser in losers:
            parent = top[int(self.rng.integers(len(top)))]
            known = len(self.candidates)
            child = await self._explore(parent, population, generation)
            population.append(child.id if child is not None else loser)
            if len(self.candidates) > known:  # a new candidate (not a state seen before)
                self.exploited[child.id] = loser
        return population

    async def _grow(self, population: list[str], generation: _Generation) -> None:
        """Fill free slots with explored children of the top quantile (or the leader)."""
        parents = quantiles(generation.ranked, self.quantile_fraction)[0] or generation.ranked[:1]
        attempts = 0
        while len(population) < self.population_size and attempts < 2 * self.population_size:
            attempts += 1
            parent = parents[int(self.rng.integers(len(parents)))]
            child = await self._explore(parent, population, generation)
            if child is not None:
                population.append(child.id)

    def _promote(self, ranked: list[str]) -> list[str]:
        """The leaders of this generation not yet validated: scored on validation next."""
        if self.promote_k == 0 or self.val is None:
            return []
        return [cid for cid in ranked[:self.promote_k] if self.val_reward(cid) is None]

    # --- explore -------------------------------------------------------------------------
    async def _explore(self, parent: str, population: list[str],
                       generation: _Generation) -> Candidate | None:
        """A new child of `parent` by one operation drawn by probability, or None."""
        weights = {op: p for op, p in self.operation_probabilities.items()
                   if p > 0 and self._available(op, parent)}
        while weights:
            names = list(weights)
            p = np.asarray([weights[n] for n in names])
            op = names[int(self.rng.choice(len(names), p=p / p.sum()))]
            made = await self._apply(op, parent, generation)
            del weights[op]
            if made is None:
                continue
            state, operations, parents = made
            if candidate_id(state) in population or candidate_id(state) == parent:
                continue
            self.counters[op] += 1
            return self.register(Candidate(state, parents=parents,
                                           operation="; ".join(operations),
                                           generation=self.generation))
        return None

    def _available(self, op: str, parent: str) -> bool:
        if op in ("resample", "perturb"):
            return self.nb_max_examples > 0 and bool(self._demo_modules(parent))
        if op == "reflect":
            return (self.language_model is not None and bool(self.failures.notes(parent))
                    and calls_left(self.budget, self.spent))
        return True

    async def _apply(self, op: str, parent: str, generation: _Generation) -> Made | None:
        if op == "resample":
            return self._resample(parent)
        if op == "perturb":
            return self._perturb(parent)
        if op == "reflect":
            return await self._reflect(parent)
        return self._crossover(parent, generation)

    def _demo_modules(self, parent: str) -> list[str]:
        return [m for m in self.demos.modules() if m in self.candidates[parent].state]

    def _pick(self, items: list[str]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def _resample(self, parent: str) -> Made:
        module = self._pick(self._demo_modules(parent))
        examples = draw_examples(self.demos, module, self.nb_min_examples,
                                 self.nb_max_examples, self._selector, self.rng)
        state, ops = with_examples(self.candidates[parent].state, module, examples)
        return state, ops, [parent]

    def _perturb(self, parent: str) -> Made | None:
        module = self._pick(self._demo_modules(parent))
        current = self.candidates[parent].state[module].get("examples") or []
        if len(current) + 1 < self.nb_min_examples:
            return None  # one demo more cannot reach nb_min_examples: resample instead
        demo = self.demos.sample(module, 1, self._selector, self.rng, exclude=current)
        if not demo:
            return None
        index = int(self.rng.integers(len(current))) if current else 0
        state, ops = swap_example(self.candidates[parent].state, module, index, demo[0])
        return state, ops, [parent]

    async def _reflect(self, parent: str) -> Made | None:
        state = self.candidates[parent].state
        module = self._pick(sorted(state))
        cases = sample_cases(self.failures.notes(parent), module, self.train,
                             self.reflection_examples, self.rng)
        messages = reflection_messages(module, state[module].get("instructions"), cases)
        text, error, trace = await propose_instructions(self.language_model, messages, cases)
        self.add_usage(lm_calls=trace.lm_calls, cost=trace.cost,
                       tokens=trace.prompt_tokens + trace.completion_tokens)
        if text is None:
            self.counters["reflection_failures"] += 1
            self.last_reflection_error = error
            return None
        new_state, ops = with_instructions(state, module, text, how="reflect")
        return new_state, [f"{ops[0]} from {len(cases)} failures"], [parent]

    def _crossover(self, parent: str, generation: _Generation) -> Made | None:
        partners = ([c for c in generation.front if c != parent]
                    or [c for c in generation.ranked if c != parent])
        if not partners:
            return None
        other = self._pick(partners)
        state_a, state_b = self.candidates[parent].state, self.candidates[other].state
        from_b = draw_crossover(crossover_genes(state_a, state_b), self.rng)
        if not from_b:
            return None
        state, ops = crossover(state_a, state_b, from_b, names=(parent, other))
        return state, ops, [parent, other]

    # --- state and config ---------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"demos": self.demos.to_json(), "failures": self.failures.to_json(),
                "counters": dict(self.counters), "ranking": list(self._ranking),
                "promoted": list(self._promoted),
                "last_reflection_error": self.last_reflection_error,
                "exploited": dict(self.exploited)}

    def load_extra_state(self, state: dict) -> None:
        self._reset_search_state()
        self.demos = DemoPool.from_json(state.get("demos", {}))
        self.failures = FailureLog.from_json(state.get("failures", {}))
        self.counters.update(state.get("counters", {}))
        self._ranking = list(state.get("ranking", []))
        self._promoted = list(state.get("promoted", []))
        self.last_reflection_error = state.get("last_reflection_error")
        self.exploited = dict(state.get("exploited", {}))

    def get_config(self) -> dict:
        config = super().get_config()
        config["use_labels"] = self.use_labels
        config.update(
            language_model=serialize_object(self.language_model),
            quantile_fraction=self.quantile_fraction,
            reflection_probability=self.reflection_probability,
            crossover_probability=self.crossover_probability,
            resample_probability=self.resample_probability,
            nb_min_examples=self.nb_min_examples, nb_max_examples=self.nb_max_examples,
            sampling=self.sampling, sampling_temperature=self.sampling_temperature,
            reflection_examples=self.reflection_examples, promote_k=self.promote_k)
        return config

    @classmethod
    def from_config(cls, config: dict) -> PopulationSearch:
        config = dict(config)
        config["language_model"] = deserialize_object(config.get("language_model"))
        return cls(**config)


PopulationSearch.__doc__ = fill_doc(PopulationSearch.__doc__)
