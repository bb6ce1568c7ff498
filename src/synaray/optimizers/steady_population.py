"""The steady-state (asynchronous) mode of `PopulationSearch`: `steady_state=True`.

A generation-synchronous search scores every member on a minibatch, then evolves the
whole population: the evaluators wait for the slowest member, then for the proposals. In
steady-state mode (as asynchronous PBT does) each member moves through the minibatches
on its own (`strategies/steady.py` keeps who is where): as soon as a member's minibatch is
scored it is ranked against the members already scored on the *same* minibatch ids (the
comparison stays paired), and it either goes on to the next minibatch or, in the bottom
quantile and off the per-example Pareto front, gives its slot to an explored child of a
top member; free slots are filled with children at once, and leaders are promoted to
validation (with racing rungs) while training goes on. The exploit step and the history row
are those of the generation-synchronous search (`_exploit_children`, `_count_generation`).

The contract with the loop (`synaray.trainers.steady_state.run_steady_state`): `ask()`
returns only the requests ready now (possibly []), and `tell(results)` takes the results
of any complete subset of the outstanding requests. The order in which requests were told
is logged in the state (`completions`): with the seed, it fixes the search, and a resumed
search asks its outstanding requests again.

A generation is an amount of work, `population_size` member steps (history, budgets and
callbacks count them); an epoch ends when the slowest member has run the epoch's
minibatches. At each epoch end the leaders by training reward are promoted to validation;
after the last one no new training is asked, the pending validations are finished and the
search stops. With a
budget preset, a request is only asked if the LM calls left (less those of the requests in
flight, and a reserve to validate a leader) pay for it.
"""

from __future__ import annotations

import math
from typing import Any

from synaray.optimizers.protocol import TRAIN, EvalRequest, EvalResult
from synaray.optimizers.strategies.pareto import GenerationRanking, pareto_front, rank
from synaray.optimizers.strategies.steady import SteadySchedule

__all__ = ["SteadyStateMixin"]


class SteadyStateMixin:
    """`ask` / `tell` of the steady-state mode, for `PopulationSearch` (see module doc)."""

    steady: SteadySchedule

    # --- ask -----------------------------------------------------------------------------
    def _steady_ask(self: Any) -> list[EvalRequest]:
        requests = self._steady_requests()
        if not requests and not self.steady.outstanding and not self.finished:
            self._steady_idle()
            requests = self._steady_requests()
            if not requests and not self.steady.outstanding and self.stop_reason is None:
                self.stop_reason = self.steady.stop_note or f"epochs completed ({self.epochs})"
        return requests

    def _steady_requests(self: Any) -> list[EvalRequest]:
        if self.finished:
            return []
        schedule = self.steady
        requests = [self._steady_request(o["key"], o["ids"]) for o in schedule.unissued()]
        promotions = self.promotions()
        room = self._steady_room()  # program runs the budget leaves for new requests
        for candidate in promotions:
            cid = candidate.id
            if schedule.is_out("val", cid):
                continue
            ids = self.unscored(cid, self.val_split, self.promotion_ids(cid))
            if ids and len(ids) <= room:
                requests.append(self._steady_request(schedule.ask_val(cid, ids), ids))
                room -= len(ids)
        if self.epoch >= self.epochs:
            return requests  # draining: only validations are left
        return requests + self._steady_train_requests(promotions, room)

    def _steady_train_requests(self: Any, promotions: list, room: float) -> list[EvalRequest]:
        """The next minibatch of each member not out, while `room` pays for it (less the
        budget reserve, computed once)."""
        schedule, requests, reserve = self.steady, [], None
        for cid in dict.fromkeys(self.population):
            if schedule.is_out("train", cid):
                continue
            step, missing = self._steady_next_step(cid)
            if not missing:
                continue
            if reserve is None:
                reserve = self._steady_reserve(promotions)
            if len(missing) <= room - reserve:
                requests.append(self._steady_request(schedule.ask_train(cid, step, missing),
                                                     missing))
                room -= len(missing)
        return requests

    def _steady_next_step(self: Any, cid: str) -> tuple[int, list[str]]:
        """The next step of `cid` with examples left to score on its minibatch, and those
        examples (the last step and [] when none is left); kept as the member's step."""
        last = self.epochs * self.steps_per_epoch
        step, missing = self.steady.steps.get(cid, 0), []
        if self._unscored_train_count(cid) == 0:
            step = last  # scored on every training example: nothing left to run
        while step < last:
            missing = self.unscored(cid, TRAIN, self._batch_at(step))
            if missing:
                break
            step += 1  # a state scored on this minibatch already: the next one
        self.steady.steps[cid] = step
        return step, missing

    def _unscored_train_count(self: Any, cid: str) -> int:
        """`len(self.unscored(cid, TRAIN, self.train_ids))` without reading the training
        set: the training examples less those `cid` is scored on (counted as results are
        told) and those it shows as demos, unscored."""
        train = self.steady.count_training(self.train_ids, lambda: (
            (c, e) for c, split, e, *_ in self.table.state_dict() if split == TRAIN))
        shown = [e for e in self.shown_examples(cid)
                 if e in train and (cid, TRAIN, e) not in self.table]
        return len(train) - self.steady.train_scored(cid) - len(shown)

    def _steady_request(self: Any, key: list, ids: list[str]) -> EvalRequest:
        split = TRAIN if key[0] == "train" else self.val_split
        return EvalRequest(key[1], self.candidates[key[1]].state, tuple(ids), split)

    def _batch_at(self: Any, step: int) -> list[str]:
        """The minibatch of `step` (drawn once, in step order, from the seeded RNG)."""
        while len(self.steady.batches) <= step:
            self.steady.batches.append(self._next_batch())
            if self._cursor >= len(self.train_ids):
                self._cursor = 0
        return self.steady.batches[step]

    def _steady_room(self: Any) -> float:
        """Program runs the calls left pay for, less those of the requests in flight
        (unbounded without a preset): computed once per ask, less each request asked."""
        if self.plan is None:
            return math.inf
        return self._affordable_runs() - self.steady.outstanding_runs()

    def _steady_reserve(self: Any, promotions: list) -> int:
        """With a preset, the runs kept back from training: the whole validation of the
        pending `promotions` and of the current leader, where not done yet."""
        if self.plan is None:
            return 0
        leader = self._ranking[:1] if self._ranking else [self.best_id]
        pending = [c.id for c in promotions] + leader
        return sum(len(self.unscored(cid, self.val_split, self.val_ids))
                   for cid in dict.fromkeys(pending))

    def _steady_idle(self: Any) -> None:
        """Nothing out and nothing to ask: every member ran its minibatches, or the budget
        left pays for none. End the training epochs: validate the leaders, then stop."""
        if self.epoch < self.epochs:
            if self.plan is not None and self.stop_reason is None:
                left = max(0, (self.budget.max_lm_calls or 0) - self.spent.lm_calls)
                self.steady.stop_note = (f"max_lm_calls: no further training fits in the "
                                         f"{left} LM calls left")
            self._end_steady_epoch(last=True)
        elif self.stop_reason is None:
            self.stop_reason = self.steady.stop_note or f"epochs completed ({self.epochs})"

    # --- tell ----------------------------------------------------------------------------
    async def _steady_tell(self: Any, results: list[EvalResult]) -> None:
        fresh = self._learn(results)
        self.steady.count_scored({(r.candidate_id, r.example_id) for r in fresh})
        self._record(results)
        self._refresh_best()
        for key in self._completed(results):
            self.steady.complete(key)
            if key[0] == "train":
                mine = [r for r in fresh if r.candidate_id == key[1]]
                await self._steady_step(key[1], key[2], mine)
        self._refresh_best()
        if self.history and self.val_reward(self.best_id) is not None:
            self.history[-1]["val_reward"] = self.val_reward(self.best_id)
        self._check_budget()

    def _completed(self: Any, results: list[EvalResult]) -> list[list]:
        """Outstanding requests now fully scored, in the order their results came."""
        first: dict[tuple[str, str], int] = {}
        for index, result in enumerate(results):
            first.setdefault((result.candidate_id, result.split), index)
        done = []
        for entry in self.steady.outstanding:
            key = entry["key"]
            split = TRAIN if key[0] == "train" else self.val_split
            if (key[1], split) in first and not self.unscored(key[1], split,
                                                                    entry["ids"]):
                done.append((first[(key[1], split)], list(key)))
        return [key for _, key in sorted(done, key=lambda pair: pair[0])]

    async def _steady_step(self: Any, member: str, step: int,
                           results: list[EvalResult]) -> None:
        """`member` finished minibatch `step`: rank it among the members scored on the same
        ids; keep it (next minibatch) or replace it by a child; fill free slots; promote."""
        schedule = self.steady
        batch = schedule.batches[step]
        schedule.member_steps += 1
        schedule.steps.pop(member, None)
        self.failures.drop(member)
        for result in results:
            if result.example_id in batch:
                self.failures.add(result)
        if member in self.population:
            peers = [c for c in dict.fromkeys(self.population)
                     if not self.unscored(c, TRAIN, batch)]
            ranked = rank({c: self.table.mean(c, TRAIN, batch) for c in peers})
            self._ranking = ranked
            await self._steady_evolve(member, step, batch, ranked, results)
        # the member (kept), the child in its slot and new members go on to the next step
        schedule.steps = {cid: schedule.steps.get(cid, step + 1)
                          for cid in dict.fromkeys(self.population)}
        if schedule.member_steps % self.population_size == 0:
            self._steady_generation(batch)
        # an epoch ends when the slowest member has run all of its minibatches
        reached = min(schedule.steps.values(), default=0) // self.steps_per_epoch
        while self.epoch < min(reached, self.epochs):
            self._end_steady_epoch()

    async def _steady_evolve(self: Any, member: str, step: int, batch: list[str],
                             ranked: list[str], results: list[EvalResult]) -> None:
        """The exploit step (`_exploit_children`) for `member` alone, if it is a loser of
        its minibatch's ranking; then free slots are filled (`_grow`)."""
        first = step == 0 and self.generation == 0 and len(self.population) == 1
        if first and (self.demo_sets or self.instruction_proposals):
            self._direct = self._direct_modules(results) if self.demo_sets else {}
            self.population = await self._first_generation(member)
            return
        population = list(dict.fromkeys(self.population))
        generation = GenerationRanking(batch, ranked,
                                       pareto_front(self._per_example(ranked), ranked)
                                       if len(ranked) > 1 else ranked)
        if member in self._losers(generation):
            child = (await self._exploit_children(generation, [member], population))[0]
            if child is not None:
                population[population.index(member)] = child
                self.failures.drop(member)
        await self._grow(population, generation)
        self.population = population

    def _steady_generation(self: Any, batch: list[str]) -> None:
        """`population_size` member steps done: a generation's worth of work."""
        row = self._count_generation([self.table.mean(c, TRAIN, batch) for c in self._ranking])
        row["val_reward"] = self.val_reward(self.best_id)
        for cid in self._promote(self._ranking):  # this generation's leaders
            if cid not in self._promoted and cid in self.population:
                self._promoted.append(cid)

    def _end_steady_epoch(self: Any, last: bool = False) -> None:
        """Promote the leaders by training reward to validation; after the last epoch only
        validations are asked."""
        self.epoch = self.epochs if last else self.epoch + 1
        for candidate in self.val_candidates():
            if candidate.id not in self._promoted and self.val_reward(candidate.id) is None:
                self._promoted.append(candidate.id)

