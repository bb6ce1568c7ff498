"""The race of a budget preset: `PopulationSearch(auto=...)` / `lm_calls=...` run generation
by generation with validation data.

With a small budget a minibatch is too small to tell candidates apart (10 examples at 150
calls, fewer once a candidate's own demos are left out), and scoring every member on it
before validating the leaders pays twice for one comparison. A preset search therefore
compares candidates on the validation set itself, by racing them against the incumbent
(`strategies/racing.py`: successive halving on a quarter, a half, then all of the
validation examples, paired):

- generation 1: the program alone has run on the first minibatch (its traces fill the demo
  pool); it is then scored on the whole validation set (the incumbent), and every member of
  the diverse first generation (demo sets across distinct answers, grounded instruction
  proposals) enters the race;
- a challenger leaves the race as soon as it is clearly below the best validated candidate
  on the same examples of a rung (its mean trails by more than a standard error of the
  paired differences), or outside the better half of the rung's finishers; one that
  finishes is validated, and the best on validation is the result;
- each later generation (once a challenger has beaten the program, or no race is left
  running: the program's own children would only be more of the first generation), the
  best validated candidate runs one training minibatch when reflection needs its failures
  (its traces also feed the demo pool; a new best runs it before any child is made, so that
  reflective rewrites can be among them), and the elite (the `promote_k` best validated
  candidates) has children made by the usual explore operations (resample or swap demos,
  reflective rewrite, crossover); they join the race, as many as
  the calls left are expected to pay for (`expected_race_cost`), the races already running
  paid first. With `surrogate=True`, up to half of them are instead the untried
  combinations of the instructions and demo sets raced so far that an additive model of
  their paired validation scores expects to score best (`strategies/surrogate.py`).

The search stops when the calls left pay for no further rung, or when a generation brings
nothing new to score.
"""

from __future__ import annotations

from typing import Any

from synaray.optimizers.protocol import TRAIN, Candidate
from synaray.optimizers.strategies.pareto import GenerationRanking
from synaray.optimizers.strategies.racing import expected_race_cost, kept_up, racing_rungs
from synaray.optimizers.strategies.surrogate import propose

__all__ = ["ValidationRaceMixin"]


class ValidationRaceMixin:
    """The race of a preset search, for `PopulationSearch` (see the module docstring)."""

    @property
    def races_on_validation(self: Any) -> bool:
        """A preset search with racing, validation data, generation by generation."""
        return (self.plan is not None and self.racing and not self.steady_state
                and self.val is not None and bool(self.val_ids))

    # --- racing ---------------------------------------------------------------------------
    def promotion_ids(self: Any, cid: str) -> list[str]:
        """The validation ids `cid` is scored on next: the incumbent (the best so far) all
        at once, a challenger its first unfinished rung, or [] once it has fallen behind."""
        if not self.racing or cid == self.best_id:
            return self.val_ids
        for rung in racing_rungs(self.val_ids):
            if self.unscored(cid, self.val_split, rung):
                return [] if self._raced_out(cid) else rung
        return self.val_ids

    def _raced_out(self: Any, cid: str) -> bool:
        """Out of the race on a rung `cid` finished: clearly below the best validated
        candidate there (paired, `kept_up`), or not in the better half of every candidate
        that finished that rung (successive halving, as ASHA promotes the top of each rung)."""
        if not self.racing or cid == self.best_id or self.val_reward(self.best_id) is None:
            return False
        for rung in racing_rungs(self.val_ids)[:-1]:
            if self.unscored(cid, self.val_split, rung):
                return False
            paired = [e for e in rung if (cid, self.val_split, e) in self.table
                      and (self.best_id, self.val_split, e) in self.table]
            if not kept_up(self.table.rewards(cid, self.val_split, paired),
                           self.table.rewards(self.best_id, self.val_split, paired)):
                return True
            if not self._in_better_half(cid, rung):
                return True
        return False

    def _in_better_half(self: Any, cid: str, rung: list[str]) -> bool:
        """Among the challengers scored on all of `rung` (the best, which `kept_up` compares
        with, left out), ranked by their mean there (ties: the older first), `cid` is in the
        better half (rounded up)."""
        # the same within one ask (the table only grows when results are told)
        key = (len(self.table), len(self.candidates), self.best_id, len(rung))
        cache = self.__dict__.setdefault("_better_half", {})
        if key not in cache:
            finished = [c for c in self.candidates if c != self.best_id
                        and not self.unscored(c, self.val_split, rung)]
            ranked = sorted(range(len(finished)), key=lambda i: (
                -self.table.mean(finished[i], self.val_split, rung), i))
            if len(cache) > 8:
                cache.clear()
            cache[key] = {finished[i] for i in ranked[:-(-len(finished) // 2)]}
        return cid in cache[key]

    # --- a generation ---------------------------------------------------------------------
    def _elite(self: Any) -> list[str]:
        """The `promote_k` best validated candidates, best first (the best alone before any
        is validated)."""
        validated = sorted(self._validated(), key=lambda c: -(self.val_reward(c) or 0.0))
        elite = [self.best_id] + [c for c in validated if c != self.best_id]
        return elite[:max(1, self.promote_k)]

    async def _race_evolve(self: Any, batch_ids: list[str]) -> None:
        """Generation 1: the incumbent and the diverse first generation enter the race.
        Later: the races still running go on, and children of the elite join them."""
        if self.generation == 1:
            members = await self._first_generation(self.best_id)
            self._promoted = list(dict.fromkeys(members))
            self._ranking = [self.best_id]
            self.population = self._race_population(self._promoted)
            return
        running = [c.id for c in self.promotions()]
        elite = self._elite()
        self._ranking = elite
        waiting = self._awaiting_first_winner(running) or self._awaiting_failures(running)
        count = 0 if waiting else min(self.population_size - len(running),
                                      self._children_affordable(running))
        children = self._surrogate_children(count // 2) if self.surrogate else []
        count -= len(children)
        if count > 0:
            parents = [elite[int(self.rng.integers(len(elite)))] for _ in range(count)]
            ranking = GenerationRanking(batch_ids, elite, elite)
            made = await self._explore_many(parents, elite + running + children, ranking)
            children += [c.id for c in made if c is not None]
        self._promoted = list(dict.fromkeys(running + children))
        self.population = self._race_population(self._promoted)

    def _awaiting_first_winner(self: Any, running: list[str]) -> bool:
        """The incumbent is still the program itself while challengers race: its children
        now would only be more of the first generation (which the plan sized), and the calls
        they take would be missing when the race has found a better parent to exploit (at
        600 calls on the bench, two generations of the program's children took the calls,
        and the winner of the first generation got no child and no reflection)."""
        return bool(running) and self.candidates[self.best_id].generation == 0

    def _awaiting_failures(self: Any, running: list[str]) -> bool:
        """The best is about to run its first training minibatch, for reflection: its
        children wait one generation for the failures (made now, before the minibatch, no
        child could be a reflective rewrite; at 600 calls on the bench the winner's children
        took all the calls and the minibatch that followed them fed nothing)."""
        return (self._race_population(running) == [self.best_id]
                and not self.table.scored_ids(self.best_id, TRAIN))

    def _surrogate_children(self: Any, count: int) -> list[str]:
        """Up to `count` new challengers from the surrogate (`strategies/surrogate.py`): the
        untried combinations of the instructions and demo sets seen in the race that the
        additive model fitted to their paired validation scores expects to score best. No
        LM call; the search's RNG breaks ties only."""
        if count <= 0:
            return []
        scores = {}
        for cid in self.candidates:
            rows = {e: self.table.get(cid, self.val_split, e) for e in self.val_ids}
            rewards = {e: row["reward"] for e, row in rows.items() if row is not None}
            if rewards:
                scores[cid] = rewards
        if self.best_id not in scores:
            return []
        states = {cid: c.state for cid, c in self.candidates.items()}
        children = []
        for proposed in propose(states, scores, self.best_id, count, self.rng):
            sources = ", ".join(f"{module}.{part} from {cid}"
                                for (module, part), cid in sorted(proposed.sources.items()))
            child = self.register(Candidate(
                proposed.state, parents=proposed.parents, generation=self.generation,
                operation=f"surrogate: {sources} (predicted {proposed.predicted:+.3f})"))
            self.counters["surrogate"] = self.counters.get("surrogate", 0) + 1
            children.append(child.id)
        return children

    def _race_population(self: Any, running: list[str] | None = None) -> list[str]:
        """Who runs the next training minibatch: the best, when no module has demos yet, or
        when reflection needs its failures to make children the calls left will pay for;
        nobody otherwise (its calls go to the race)."""
        if not self.demos.modules():
            return [self.best_id]
        if self.language_model is None or self.reflection_probability <= 0:
            return []
        running = [c.id for c in self.promotions()] if running is None else running
        if self._awaiting_first_winner(running):
            return []
        # a margin of two children: a race that costs a little more than expected would
        # otherwise pay for a minibatch and then for no child at all (seen on the bench)
        return [self.best_id] if self._children_affordable(running, minibatch=False) >= 2 \
            else []

    def _children_affordable(self: Any, running: list[str], minibatch: bool = True) -> int:
        """New challengers the calls left are expected to pay for, after the rest of the
        races already running (and the best's next minibatch, if it runs one)."""
        runs = self._affordable_runs()
        reserved = len(self.unscored(self.best_id, TRAIN, self._peek_batch())) \
            if minibatch and self._race_population(running) else 0
        for cid in running:
            left = len(self.unscored(cid, self.val_split, self.val_ids))
            if cid == self.best_id:  # the incumbent is validated whole
                reserved += left
            else:  # a challenger: the rungs it is expected to reach
                reserved += expected_race_cost(len(self.val_ids), done=len(self.val_ids) - left)
        return max(0, int((runs - reserved) / expected_race_cost(len(self.val_ids))))

    def _peek_batch(self: Any) -> list[str]:
        """The next minibatch's ids, when the order is already drawn (else the batch size
        stands for it)."""
        if self._cursor == 0:
            return self.train_ids[:self.batch_size]
        return self._order[self._cursor:self._cursor + self.batch_size]

    def _race_fit_to_budget(self: Any) -> None:
        """Drop what the calls left cannot pay for this step (the minibatch first, then the
        least advanced and weakest challengers), keeping the calls to finish the race of the
        leading challenger; stop when nothing is left to score."""
        runs = self._affordable_runs()

        def cost() -> int:
            minibatch = sum(len(self.unscored(c, TRAIN, self._peek_batch()))
                            for c in self.population)
            promoted = self.promotions()
            step = sum(len(self.unscored(c.id, self.val_split, self.promotion_ids(c.id)))
                       for c in promoted)
            finish = 0
            if promoted:  # the leader's validation after this step's rung
                lead = promoted[0].id
                finish = (len(self.unscored(lead, self.val_split, self.val_ids))
                          - len(self.unscored(lead, self.val_split, self.promotion_ids(lead))))
            return minibatch + step + finish

        # the most advanced races first, then the best on what they were scored on: the
        # newest and weakest are dropped first
        def progress(cid: str) -> tuple[int, float]:
            scored = [e for e in self.val_ids if (cid, self.val_split, e) in self.table]
            return (-len(scored), -(self.table.mean(cid, self.val_split, scored) or 0.0))
        order = {cid: n for n, cid in enumerate(self._promoted)}
        self._promoted = sorted(self._promoted, key=lambda c: (*progress(c), order[c]))
        while cost() > runs and (self._promoted or self.population):
            if self.population:
                self.population = []
            else:
                self._promoted = self._promoted[:-1]
            self.counters["trimmed"] += 1
        if self.stop_reason is not None:
            return
        if cost() == 0 and not self.promotions():
            if self._stalled():
                self.stop_reason = "no new evaluation in a generation: nothing left to try"
            elif self._children_affordable([]) == 0:
                left = max(0, (self.budget.max_lm_calls or 0) - self.spent.lm_calls)
                self.stop_reason = (f"max_lm_calls: the {left} LM calls left pay for no "
                                    "further race")
