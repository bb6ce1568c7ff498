"""`Optimizer`: the ask/tell base that every search algorithm extends (DESIGN §2).

The base owns what every search needs and what a checkpoint must keep: the candidates and
their lineage, the score table, the seeded RNG, the minibatch sampler, the epoch and
generation counters, the budget spent and the best candidate on validation. A subclass
writes the search itself in three hooks:

- `initial_population(seed)`: the first population, from the program's current state;
- `async evolve(batch_ids)`: after each generation's minibatch scores are in the table,
  replace `self.population` (select, exploit, explore; may call an LM);
- `promotions()` (optional): candidates to score on the validation set mid-epoch.

The loop a trainer runs::

    optimizer.setup(program.get_state(), train, val, batch_size=32, epochs=3)
    while not optimizer.finished:
        requests = optimizer.ask()
        results = await engine.evaluate(requests) if requests else []
        await optimizer.tell(results)

Optimizers never import Ray, engines or the filesystem, and read no clock: the trainer
reports wall time with `add_time`. (The one asyncio use: `propose_many` gathers the
proposals of a step, in `strategies/reflection.propose_all`.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from synaray.errors import ConfigError, UsageError
from synaray.optimizers.budget import Budget, BudgetSpent
from synaray.optimizers.protocol import TRAIN, VAL, Candidate, EvalRequest, EvalResult
from synaray.optimizers.score_table import ScoreTable
from synaray.optimizers.strategies.knobs import check_int
from synaray.optimizers.strategies.proposal import Proposal

__all__ = ["Optimizer"]

STATE_VERSION = 1


class Optimizer:
    """Base of the ask/tell optimizers. See the module docstring for the loop.

    Args:
        population_size: candidates evaluated per generation (>= 1).
        val_top_k: at each epoch end, how many top candidates (by training reward) are scored
            on the full validation set; the best of them on validation is `best()`.
        seed: seeds the RNG; the same seed gives the same search.
        budget: a `Budget` (or dict) of limits; epochs always bound the search too.
        name: display name.
    """

    def __init__(self, population_size: int = 1, val_top_k: int = 2, seed: int = 0,
                 budget: Budget | dict | None = None, name: str | None = None) -> None:
        self.population_size = check_int("population_size", population_size, 1)
        self.val_top_k = check_int("val_top_k", val_top_k, 1)
        self.seed = seed
        self.budget = budget if isinstance(budget, Budget) else Budget(**(budget or {}))
        self.name = name or type(self).__name__
        self._ready = False

    # --- lifecycle -----------------------------------------------------------------------
    def setup(self, initial_state: dict, train: Any, val: Any = None, batch_size: int = 32,
              epochs: int = 1) -> None:
        """Start a new search from `initial_state` on `train` (and `val`) Datasets."""
        if len(train) == 0:
            raise ConfigError("The training data is empty.")
        self.bind_data(train, val)
        self.batch_size = max(1, min(batch_size, len(train)))
        self.epochs = epochs
        self.rng = np.random.default_rng(self.seed)
        self.table = ScoreTable()
        self.spent = BudgetSpent()
        self.candidates: dict[str, Candidate] = {}
        self.lineage: list[dict] = []
        self.epoch = 0
        self.generation = 0
        self.phase = TRAIN
        self.stop_reason: str | None = None
        self.best_id: str | None = None
        self.history: list[dict] = []
        self._order: list[str] = []
        self._cursor = 0
        self._batch: list[str] = []
        seed = self.register(Candidate(initial_state, operation="seed"))
        self.best_id = seed.id
        self.population = [c.id for c in self.initial_population(seed)]
        self._ready = True

    def bind_data(self, train: Any, val: Any = None) -> None:
        """Give the datasets (after `load_state_dict`, on resume)."""
        self.train = train
        self.val = val if val is not None and len(val) else None
        self.train_ids = list(train.ids)
        self.val_split = VAL if self.val is not None else TRAIN
        self.val_ids = list(self.val.ids) if self.val is not None else list(self.train_ids)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_ids) / self.batch_size)

    @property
    def finished(self) -> bool:
        return self._ready and self.stop_reason is not None

    def register(self, candidate: Candidate) -> Candidate:
        """Add a candidate (or return the known one with the same state)."""
        known = self.candidates.get(candidate.id)
        if known is not None:
            return known
        self.candidates[candidate.id] = candidate
        self.lineage.append({"id": candidate.id, "parents": candidate.parents,
                             "operation": candidate.operation,
                             "generation": candidate.generation})
        return candidate

    # --- ask / tell ----------------------------------------------------------------------
    def _next_batch(self) -> list[str]:
        if self._cursor == 0:
            self._order = [str(i) for i in self.rng.permutation(self.train_ids)]
        batch = self._order[self._cursor:self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return batch

    def unscored(self, cid: str, split: str, example_ids: Iterable[str]) -> list[str]:
        """The examples of `example_ids` that `cid` still needs scoring on: those not in the
        score table, less the training examples it shows as its own demos (`shown_examples`):
        scored, those would show the model its own answer, inflating the score of every
        candidate whose demos happen to fall in the minibatch."""
        missing = self.table.missing(cid, split, example_ids)
        if split != TRAIN or not missing:
            return missing
        shown = self.shown_examples(cid)
        return [e for e in missing if e not in shown] if shown else missing

    def shown_examples(self, cid: str) -> set[str]:
        """Training example ids that candidate `cid` shows in its prompts (none here; the
        few-shot optimizers know their demos' examples)."""
        return set()

    def _requests(self, ids: list[str], split: str, example_ids: list[str]) -> list[EvalRequest]:
        requests = []
        for cid in dict.fromkeys(ids):
            missing = self.unscored(cid, split, example_ids)
            if missing:
                requests.append(EvalRequest(cid, self.candidates[cid].state, tuple(missing),
                                            split))
        return requests

    def ask(self) -> list[EvalRequest]:
        """The evaluations needed now (pairs already scored are left out)."""
        if not self._ready:
            raise UsageError(f"{self.name}.ask() before setup(); call setup() or "
                             "load_state_dict() first.")
        if self.finished:
            return []
        if self.phase == TRAIN:
            if not self._batch:
                self._batch = self._next_batch()
            requests = self._requests(self.population, TRAIN, self._batch)
            for cid in dict.fromkeys(c.id for c in self.promotions()):
                requests += self._requests([cid], self.val_split, self.promotion_ids(cid))
            return requests
        return self._requests([c.id for c in self.val_candidates()], self.val_split,
                              self.val_ids)

    async def tell(self, results: list[EvalResult]) -> None:
        """Record results, then advance the search by one step."""
        self._record(results)
        self._refresh_best()
        if self.phase == TRAIN:
            await self._end_generation()
        else:
            self._end_epoch()

    def _record(self, results: list[EvalResult]) -> None:
        """Add results to the score table and their usage to what was spent."""
        for result in results:
            if self.table.add(result):
                self.spent.lm_calls += result.lm_calls
                self.spent.lm_failures += result.lm_failures
                self.spent.tokens += result.prompt_tokens + result.completion_tokens
                self.spent.cost += result.cost

    def _refresh_best(self) -> None:
        """Best = the highest validation mean among fully validated candidates (ties: oldest)."""
        best, best_score = self.best_id, self.val_reward(self.best_id)
        for cid in self._validated():
            score = self.val_reward(cid)
            if best_score is None or (score is not None and score > best_score):
                best, best_score = cid, score
        self.best_id = best

    async def _end_generation(self) -> None:
        batch = self._batch
        self._count_generation([self.table.mean(cid, TRAIN, batch)
                                for cid in dict.fromkeys(self.population)])
        await self.evolve(batch)
        self._batch = []
        if self._cursor >= len(self.train_ids):
            self._cursor = 0
            self.phase = VAL
        else:
            self._check_budget()

    def _count_generation(self, scores: Iterable[float | None]) -> dict:
        """Count one generation done and append its history row: the best and the mean of
        the members' minibatch `scores` (None: unscored, left out). Returns the row."""
        values = [s for s in scores if s is not None]
        self.generation += 1
        self.spent.generations += 1
        row = {"epoch": self.epoch, "generation": self.generation,
               "reward": max(values, default=None), "population_reward": _mean(values),
               "lm_calls": self.spent.lm_calls}
        self.history.append(row)
        return row

    def _end_epoch(self) -> None:
        self.history[-1]["val_reward"] = self.val_reward(self.best_id)
        self.epoch += 1
        self.phase = TRAIN
        if self.epoch >= self.epochs:
            self.stop_reason = f"epochs completed ({self.epochs})"
        self._check_budget()

    def _validated(self) -> list[str]:
        """Candidates scored on every validation example, in registration order."""
        return [cid for cid in self.candidates
                if not self.unscored(cid, self.val_split, self.val_ids)]

    def _check_budget(self) -> None:
        if self.stop_reason is None:
            self.stop_reason = self.spent.stop_reason(self.budget,
                                                      self.val_reward(self.best_id))

    def add_time(self, seconds: float) -> None:
        """Wall time spent (reported by the trainer; optimizers read no clock)."""
        self.spent.time_s += seconds
        self._check_budget()

    def add_usage(self, lm_calls: int = 0, tokens: int = 0, cost: float = 0.0) -> None:
        """LM usage of the optimizer's own proposals (reflection, crossover...)."""
        self.spent.lm_calls += lm_calls
        self.spent.tokens += tokens
        self.spent.cost += cost

    async def propose_many(self, proposals: list[Proposal]) -> list[tuple[str | None,
                                                                           str | None]]:
        """Several proposals at once (at most `PROPOSALS_AT_ONCE` calls in flight, each
        also taking an LM-call slot of the engine's bound), their usage booked in the
        given order; `(text or None, error or None)` per proposal, in the same order."""
        from synaray.optimizers.strategies.reflection import propose_all

        answers = await propose_all(self.language_model, proposals)
        for _, _, trace in answers:
            self.add_usage(lm_calls=trace.lm_calls, cost=trace.cost,
                           tokens=trace.prompt_tokens + trace.completion_tokens)
        return [(text, error) for text, error, _ in answers]

    def choose_loop(self, prefers_steady_state: bool) -> None:
        """Called by `fit` before the search with what the engine prefers
        (`Engine.prefers_steady_state`); a search that can run either way picks here. The
        base runs generation by generation only."""

    def calls_left(self, reserved: int = 0) -> bool:
        """Whether the budget leaves room for one more LM call of the optimizer's own,
        with `reserved` calls already planned (proposals about to run together)."""
        from synaray.optimizers.strategies.reflection import calls_left

        return calls_left(self.budget, self.spent, reserved)

    # --- scores --------------------------------------------------------------------------
    def train_reward(self, cid: str) -> float | None:
        """Mean training reward of a candidate over every training example it was scored on."""
        return self.table.mean(cid, TRAIN, self.table.scored_ids(cid, TRAIN))

    def val_reward(self, cid: str | None) -> float | None:
        if cid is None or self.unscored(cid, self.val_split, self.val_ids):
            return None
        return self.table.mean(cid, self.val_split, self.val_ids)

    @property
    def best_val_reward(self) -> float | None:
        return self.val_reward(self.best_id)

    def predictions(self, cid: str, split: str, example_ids: list[str]) -> list[dict | None] | None:
        """The stored predictions of a candidate on `example_ids` (None if any is unscored)."""
        rows = [self.table.get(cid, split, e) for e in example_ids]
        if any(r is None for r in rows):
            return None
        return [r["y_pred"] for r in rows]

    def status(self) -> dict:
        """A small JSON snapshot of where the search is (what a remote proxy mirrors)."""
        return {"epoch": self.epoch, "epochs": self.epochs, "phase": self.phase,
                "generation": self.generation, "stop_reason": self.stop_reason,
                "best_id": self.best_id, "best": self.best().to_dict(),
                "best_val_reward": self.best_val_reward, "history": self.history,
                "spent": self.spent.model_dump(), "steps_per_epoch": self.steps_per_epoch,
                "population": list(self.population)}

    def label_of(self, example_id: str) -> dict | None:
        """The expected output (JSON) of a training example, or None if unknown.

        Few-shot optimizers turn it into labelled demos unless `use_labels` is False.
        """
        if not getattr(self, "use_labels", False):
            return None
        try:
            _, y = self.train.fetch([example_id])[0]
        except Exception:  # an id from another split, or unlabelled data
            return None
        return None if y is None else (y if isinstance(y, dict) else y.get_json())

    def best(self) -> Candidate:
        """The candidate to ship now: the best on validation so far (the seed before that)."""
        if not self._ready:
            raise UsageError(f"{self.name}.best() before setup().")
        return self.candidates[self.best_id]

    # --- hooks for subclasses ----------------------------------------------------------
    def initial_population(self, seed: Candidate) -> list[Candidate]:
        return [seed]

    async def evolve(self, batch_ids: list[str]) -> None:
        """Replace `self.population` (a list of candidate ids) after a generation."""

    def promotions(self) -> list[Candidate]:
        return []

    def promotion_ids(self, cid: str) -> list[str]:
        """The validation examples a promoted candidate is scored on now (default: all).

        A racing subclass returns a first rung of them, then the rest only for a candidate
        that kept up with the best (successive halving), or [] for one that did not.
        """
        return self.val_ids

    def val_candidates(self) -> list[Candidate]:
        """At epoch end: the top `val_top_k` population members by training reward."""
        ranked = sorted(dict.fromkeys(self.population),
                        key=lambda cid: -(self.train_reward(cid) or 0.0))
        return [self.candidates[cid] for cid in ranked[:self.val_top_k]]

    def extra_state(self) -> dict:
        """Subclass state to checkpoint (JSON)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # --- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume exactly: JSON only."""
        return {"version": STATE_VERSION, "class_name": type(self).__name__,
                "config": self.get_config(), "batch_size": self.batch_size,
                "epochs": self.epochs, "rng": self.rng.bit_generator.state,
                "table": self.table.state_dict(), "spent": self.spent.model_dump(),
                "candidates": [c.to_dict() for c in self.candidates.values()],
                "lineage": self.lineage, "epoch": self.epoch, "generation": self.generation,
                "phase": self.phase, "stop_reason": self.stop_reason, "best_id": self.best_id,
                "history": self.history, "order": self._order, "cursor": self._cursor,
                "batch": self._batch, "population": self.population,
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict, train: Any, val: Any = None) -> None:
        if state.get("version", 0) > STATE_VERSION:
            from synaray.errors import CheckpointVersionError

            raise CheckpointVersionError(
                f"Optimizer state version {state['version']} is newer than this synaray "
                f"reads ({STATE_VERSION}).")
        self.bind_data(train, val)
        self.batch_size, self.epochs = state["batch_size"], state["epochs"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        self.table = ScoreTable()
        self.table.load_state_dict(state["table"])
        self.spent = BudgetSpent(**state["spent"])
        self.candidates = {c["id"]: Candidate.from_dict(c) for c in state["candidates"]}
        self.lineage = state["lineage"]
        self.epoch, self.generation = state["epoch"], state["generation"]
        self.phase, self.stop_reason = state["phase"], state["stop_reason"]
        self.best_id, self.history = state["best_id"], state["history"]
        self._order, self._cursor = state["order"], state["cursor"]
        self._batch, self.population = state["batch"], state["population"]
        self.load_extra_state(state.get("extra", {}))
        self._ready = True

    # --- config ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {"population_size": self.population_size, "val_top_k": self.val_top_k,
                "seed": self.seed, "budget": self.budget.model_dump(exclude_defaults=True),
                "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**config)

    def __repr__(self) -> str:
        if not self._ready:
            return f"<{type(self).__name__} population={self.population_size}>"
        best = self.val_reward(self.best_id)
        best_text = "-" if best is None else f"{best:.3f}"
        return (f"<{type(self).__name__} epoch={self.epoch}/{self.epochs} "
                f"generation={self.generation} population={len(self.population)} "
                f"best={best_text}>")


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
