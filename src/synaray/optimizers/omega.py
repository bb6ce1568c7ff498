"""`OMEGA`: a genetic algorithm over instructions with Dominated Novelty Search.

After Synalinks' OMEGA ("OptiMizEr as Genetic Algorithm"), rebuilt on the ask/tell base.
Each generation, the members (elites and last generation's offspring) are scored on the
same minibatch; the population is pruned back to `population_size` elites by Dominated
Novelty Search (a member both less fit than others and close to them in instruction space
goes first); then offspring are bred from elites chosen by fitness: an LM mutates one
module's instructions after seeing its failing examples with their expected outputs, or,
from the second generation on, an LM merges the instructions of two elites (crossover).
Children also get few-shot examples resampled from rewarded traces, as in `RandomFewShot`.

Unlike Synalinks, where crossover was gated on an epoch counter that never advanced (so
crossover never happened), the chance of crossover here is `crossover_probability` in
every generation after the first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from synaray.optimizers.budget import Budget
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.protocol import TRAIN, Candidate, EvalResult, candidate_id
from synaray.optimizers.strategies import knobs, mutations, novelty
from synaray.optimizers.strategies.demos import DemoPool
from synaray.optimizers.strategies.few_shot import FewShotSearch
from synaray.optimizers.strategies.pareto import rank
from synaray.optimizers.strategies.proposal import Proposal
from synaray.optimizers.strategies.reflection import (
    FailureLog,
    crossover_messages,
    reflection_messages,
    sample_cases,
)
from synaray.optimizers.strategies.selectors import make_selector
from synaray.saving import deserialize_object, serialize_object

__all__ = ["OMEGA"]

Made = tuple[dict, list[str], list[str]]


@dataclass
class _Job:
    """One child to breed: how, from whom, which module, and its LM call (if any)."""

    kind: str  # "mutation" or "crossover"
    parent: str
    module: str
    proposal: Proposal | None
    other: str = ""


class OMEGA(FewShotSearch, Optimizer):
    """OMEGA: LM-driven mutation and crossover of instructions, pruned by Dominated Novelty.

    Fitness is a member's mean training reward over every example it was scored on. The
    novelty of a member is its distance to fitter members: cosine distance between
    embeddings of the instructions (from `embedding_model`), or a token-Jaccard distance
    of the instruction texts when there is no embedding model (or its call failed).

    Args:
        language_model: the model that mutates and merges instructions. None: no LM calls;
            only few-shot examples evolve (and crossover exchanges instructions as they are).
        embedding_model: called as `await embedding_model(texts)`, answering
            `{"embeddings": [[float, ...], ...]}` (e.g. `synaray.EmbeddingModel(...)`); one
            call per generation embeds the new instruction texts (cached in the state).
            None: token-Jaccard distances, no calls.
        population_size: elites kept by the Dominated Novelty competition (integer >= 1,
            default 10).
        nb_offspring: children bred per generation (integer >= 1; None, the default, means
            `max(1, population_size // 2)`). A generation scores `population_size +
            nb_offspring` members at most, each on `batch_size` examples, and makes up to
            `nb_offspring` LM calls.
        mutation_temperature: sampling temperature of the mutation calls (>= 0, default
            0.3); None leaves the model's own setting.
        crossover_temperature: sampling temperature of the crossover calls (>= 0, default
            0.3); None leaves the model's own setting.
        crossover_probability: chance that a child is a crossover of two elites rather
            than a mutation (in [0, 1], default 0.2); crossover needs two elites, so it
            starts in the second generation. 0 disables it.
        k_nearest: how many nearest fitter members a member's novelty is averaged over
            (integer >= 1, default 3). 1 prunes near-duplicates of any fitter member.
        selection: how parents are chosen among elites: "softmax" (by fitness, see
            `selection_temperature`), "random" or "best".
        selection_temperature: softmax temperature for `selection` (> 0, default 0.3).
{{few_shot_args}}
        reflection_examples: failing examples of the minibatch shown to the LM per call
            (integer >= 1, default 4).
{{search_args}}
{{raises}}

    Example:
        >>> omega = OMEGA(population_size=4, crossover_probability=0.5, seed=2)
        >>> omega
        <OMEGA population=4>
        >>> omega.nb_offspring_per_generation
        2
    """

    def __init__(self, language_model: Any = None, embedding_model: Any = None,
                 population_size: int = 10, nb_offspring: int | None = None,
                 mutation_temperature: float | None = 0.3,
                 crossover_temperature: float | None = 0.3,
                 crossover_probability: float = 0.2, k_nearest: int = 3,
                 selection: str = "softmax", selection_temperature: float = 0.3,
                 nb_min_examples: int = 1, nb_max_examples: int = 3,
                 sampling: str = "softmax", sampling_temperature: float = 0.3,
                 reflection_examples: int = 4, seed: int = 0,
                 budget: Budget | dict | None = None, val_top_k: int = 2,
                 use_labels: bool = True,
                 name: str | None = None) -> None:
        super().__init__(nb_min_examples, nb_max_examples, sampling, sampling_temperature,
                         use_labels, population_size=population_size, val_top_k=val_top_k,
                         seed=seed, budget=budget, name=name)
        if nb_offspring is not None:
            knobs.check_int("nb_offspring", nb_offspring, 1)
        for knob, value in (("mutation_temperature", mutation_temperature),
                            ("crossover_temperature", crossover_temperature)):
            if value is not None:
                knobs.check_number(knob, value, 0.0)
        knobs.check_probability("crossover_probability", crossover_probability)
        knobs.check_number("selection_temperature", selection_temperature, 0.0, low_inclusive=False)
        self._parent_selector = make_selector(selection, selection_temperature, "selection")
        self.language_model, self.embedding_model = language_model, embedding_model
        self.nb_offspring, self.crossover_probability = nb_offspring, crossover_probability
        self.mutation_temperature = mutation_temperature
        self.crossover_temperature = crossover_temperature
        self.k_nearest = knobs.check_int("k_nearest", k_nearest, 1)
        self.selection, self.selection_temperature = selection, selection_temperature
        self.reflection_examples = knobs.check_int("reflection_examples", reflection_examples, 1)
        self._reset_search_state()

    @property
    def nb_offspring_per_generation(self) -> int:
        if self.nb_offspring is not None:
            return self.nb_offspring
        return max(1, self.population_size // 2)

    def _reset_search_state(self) -> None:
        self.demos = DemoPool()
        self.failures = FailureLog()
        self.counters = {"mutation": 0, "crossover": 0, "fewshot": 0, "lm_failures": 0,
                         "embedding_failures": 0}
        self.last_error: str | None = None
        self._embeddings: dict[str, list[float]] = {}

    # --- hooks ---------------------------------------------------------------------------
    def initial_population(self, seed: Candidate) -> list[Candidate]:
        self._reset_search_state()
        return [seed]

    async def tell(self, results: list[EvalResult]) -> None:
        self._learn(results, set(self._batch) if self.phase == TRAIN else set())
        await super().tell(results)

    async def evolve(self, batch_ids: list[str]) -> None:
        """Prune to the elites by Dominated Novelty Search, then breed the offspring."""
        members = list(dict.fromkeys(self.population))
        fitness = {cid: self.train_reward(cid) or 0.0 for cid in members}
        elites = await self._compete(members, fitness)
        self.population = await self._breed_all(elites, fitness,
                                                self.nb_offspring_per_generation)
        self.failures.clear()

    # --- competition ---------------------------------------------------------------------
    async def _compete(self, members: list[str], fitness: dict[str, float]) -> list[str]:
        if len(members) > self.population_size:
            texts = [novelty.descriptor(self.candidates[cid].state) for cid in members]
            distances = await self._distances(texts)
            members = novelty.dns_survivors(members, [fitness[c] for c in members], distances,
                                            self.k_nearest, self.population_size)
            keep = {_text_key(novelty.descriptor(self.candidates[c].state)) for c in members}
            self._embeddings = {k: v for k, v in self._embeddings.items() if k in keep}
        return rank({cid: fitness[cid] for cid in members})

    async def _distances(self, texts: list[str]) -> np.ndarray:
        if self.embedding_model is None:
            return novelty.distance_matrix(texts, novelty.jaccard_distance)
        missing = list(dict.fromkeys(t for t in texts if _text_key(t) not in self._embeddings))
        if missing:
            vectors, error, trace = await novelty.embed_texts(self.embedding_model, missing)
            self.add_usage(lm_calls=trace.lm_calls, cost=trace.cost,
                           tokens=trace.prompt_tokens + trace.completion_tokens)
            if vectors is None:
                self.counters["embedding_failures"] += 1
                self.last_error = error
                return novelty.distance_matrix(texts, novelty.jaccard_distance)
            self._embeddings.update({_text_key(t): v for t, v in zip(missing, vectors,
                                                                     strict=True)})
        return novelty.distance_matrix([self._embeddings[_text_key(t)] for t in texts],
                                       novelty.cosine_distance)

    # --- breeding ------------------------------------------------------------------------
    def _choose(self, ids: list[str], fitness: dict[str, float]) -> str:
        return ids[self._parent_selector.select([fitness[c] for c in ids], 1, self.rng)[0]]

    async def _breed_all(self, elites: list[str], fitness: dict[str, float],
                         count: int) -> list[str]:
        """`count` children: planned in order (every random draw), their LM calls made
        together (`propose_many`), then finished in order, so the search does not depend
        on the order the calls complete in."""
        jobs = []
        for _ in range(count):
            jobs.append(self._plan_child(elites, fitness,
                                         sum(j.proposal is not None for j in jobs)))
        asked = [job for job in jobs if job.proposal is not None]
        answers = iter(await self.propose_many([j.proposal for j in asked]) if asked else [])
        population = list(elites)
        for job in jobs:
            answer = next(answers) if job.proposal is not None else (None, None)
            child = await self._finish_child(job, *answer, taken=population)
            if child is not None:
                population.append(child.id)
        return population

    def _plan_child(self, elites: list[str], fitness: dict[str, float],
                    reserved: int) -> _Job:
        parent = self._choose(elites, fitness)
        if (self.generation >= 2 and len(elites) >= 2
                and self.rng.random() < self.crossover_probability):
            other = self._choose([c for c in elites if c != parent], fitness)
            state_a, state_b = self.candidates[parent].state, self.candidates[other].state
            module = self._pick(sorted(set(state_a) & set(state_b)))
            texts = (state_a[module].get("instructions"), state_b[module].get("instructions"))
            proposal = None
            if texts[0] != texts[1]:
                cases = self._cases(parent, module)
                proposal = self._proposal(crossover_messages(module, *texts, cases), cases,
                                          self.crossover_temperature, reserved)
            return _Job("crossover", parent, module, proposal, other)
        return self._plan_mutation(parent, reserved)

    def _plan_mutation(self, parent: str, reserved: int) -> _Job:
        state = self.candidates[parent].state
        module = self._pick(sorted(state))
        proposal = None
        if self.failures.notes(parent):
            cases = self._cases(parent, module)
            proposal = self._proposal(
                reflection_messages(module, state[module].get("instructions"), cases), cases,
                self.mutation_temperature, reserved)
        return _Job("mutation", parent, module, proposal)

    def _cases(self, parent: str, module: str) -> list[dict]:
        return sample_cases(self.failures.notes(parent), module, self.train,
                            self.reflection_examples, self.rng)

    def _proposal(self, messages: list[dict], cases: list[dict], temperature: float | None,
                  reserved: int) -> Proposal | None:
        """The LM call to make, or None without a model or LM calls left in the budget."""
        if self.language_model is None or not self.calls_left(reserved):
            return None
        return Proposal(messages, cases,
                        kwargs={} if temperature is None else {"temperature": temperature})

    async def _finish_child(self, job: _Job, text: str | None, error: str | None,
                            taken: list[str]) -> Candidate | None:
        if job.proposal is not None and text is None:
            self.counters["lm_failures"] += 1
            self.last_error = error
        if job.kind == "crossover":
            made = self._crossed(job, text)
            if made is None:  # the parents had nothing to exchange: a mutation instead
                made = await self._mutate(job.parent)
        else:
            made = self._mutated(job, text)
        if made is None or candidate_id(made[0]) in taken:
            return None
        state, operations, parents = made
        self.counters[operations[0].split()[0]] += 1
        return self.register(Candidate(state, parents=parents, operation="; ".join(operations),
                                       generation=self.generation))

    async def _mutate(self, parent: str) -> Made | None:
        job = self._plan_mutation(parent, reserved=0)
        text, error = (await self.propose_many([job.proposal]))[0] if job.proposal else \
            (None, None)
        if job.proposal is not None and text is None:
            self.counters["lm_failures"] += 1
            self.last_error = error
        return self._mutated(job, text)

    def _mutated(self, job: _Job, text: str | None) -> Made | None:
        state, operations = self.candidates[job.parent].state, []
        if text is not None:
            state, operations = mutations.with_instructions(state, job.module, text,
                                                            how="mutation")
        return self._with_demos(state, job.module, operations, [job.parent])

    def _crossed(self, job: _Job, text: str | None) -> Made | None:
        parent, other = job.parent, job.other
        state_a, state_b = self.candidates[parent].state, self.candidates[other].state
        if text is not None:
            state, operations = mutations.with_instructions(state_a, job.module, text,
                                                            how="crossover")
            return self._with_demos(state, job.module, operations, [parent, other])
        from_b = mutations.draw_crossover(mutations.crossover_genes(state_a, state_b), self.rng)
        if not from_b:
            return None
        state, operations = mutations.crossover(state_a, state_b, from_b, names=(parent, other))
        return state, operations, [parent, other]

    def _with_demos(self, state: dict, module: str, operations: list[str],
                    parents: list[str]) -> Made | None:
        """Resample the module's demos too (when the pool has some); None if nothing changed."""
        if self.nb_max_examples > 0 and self.demos.size(module):
            state, ops = mutations.with_examples(state, module, self._draw_demos(module),
                                                 how="fewshot")
            operations = operations + ops
        return (state, operations, parents) if operations else None

    # --- state and config ---------------------------------------------------------------
    def extra_state(self) -> dict:
        return {**self._pool_state(), "counters": dict(self.counters),
                "last_error": self.last_error,
                "embeddings": {k: list(v) for k, v in self._embeddings.items()}}

    def load_extra_state(self, state: dict) -> None:
        self._reset_search_state()
        self._load_pool_state(state)
        self.counters.update(state.get("counters", {}))
        self.last_error = state.get("last_error")
        self._embeddings = {k: list(v) for k, v in state.get("embeddings", {}).items()}

    def get_config(self) -> dict:
        config = {**super().get_config(), **self.few_shot_config()}
        config.update(
            language_model=serialize_object(self.language_model),
            embedding_model=serialize_object(self.embedding_model),
            nb_offspring=self.nb_offspring, mutation_temperature=self.mutation_temperature,
            crossover_temperature=self.crossover_temperature,
            crossover_probability=self.crossover_probability, k_nearest=self.k_nearest,
            selection=self.selection, selection_temperature=self.selection_temperature,
            reflection_examples=self.reflection_examples)
        return config

    @classmethod
    def from_config(cls, config: dict) -> OMEGA:
        config = dict(config)
        for key in ("language_model", "embedding_model"):
            config[key] = deserialize_object(config.get(key))
        return cls(**config)


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


OMEGA.__doc__ = knobs.fill_doc(OMEGA.__doc__)
