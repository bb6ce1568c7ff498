"""Bookkeeping of a steady-state (asynchronous) search: who is at which minibatch, what is
out, and in which order results came back.

In a steady-state search every member moves through the sequence of minibatches on its
own: member m at step s is scored on minibatch `s`, and when that score is in it is
compared with the members already scored on the same minibatch (a paired comparison on
shared example ids) and either goes on to step s + 1 or gives its slot to an explored
child, without waiting for the slowest member of a generation (asynchronous PBT).

`SteadySchedule` holds the state that makes this reproducible: the minibatch of each step
(drawn once, in order), each member's next step, the requests asked and not yet told (a
resumed search asks them again), and the log of completions in the order they were told.
Given the seed and that order, the search is the same: `replay` feeds recorded results
back in the recorded order. All of it is JSON (`to_json` / `from_json`).

Example:
    >>> schedule = SteadySchedule()
    >>> schedule.ask_train("c1", 0, ["e1", "e2"])
    ['train', 'c1', 0]
    >>> schedule.outstanding_runs()
    2
    >>> schedule.complete(["train", "c1", 0]); schedule.completions
    [['train', 'c1', 0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SteadySchedule"]

Key = list  # ["train", candidate_id, step] or ["val", candidate_id, rung size]


class SteadySchedule:
    """Per-member steps, outstanding requests and the completion log (JSON state)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.steps: dict[str, int] = {}
        self.outstanding: list[dict[str, Any]] = []
        self.completions: list[Key] = []
        self.member_steps = 0
        self.stop_note: str | None = None  # why training ended early (the budget)
        # Keys handed out by ask() in this process (not stored: after a resume, the
        # outstanding requests are asked again).
        self._issued: set[str] = set()
        # Not stored either (rebuilt from the score table when first needed): the training
        # ids, and per candidate how many of them it is scored on.
        self._train: frozenset[str] | None = None
        self._scored: dict[str, int] = {}

    # --- requests ------------------------------------------------------------------------
    def _add(self, key: Key, ids: list[str]) -> Key:
        self.outstanding.append({"key": key, "ids": list(ids)})
        self._issued.add(repr(key))
        return key

    def ask_train(self, cid: str, step: int, ids: list[str]) -> Key:
        return self._add(["train", cid, step], ids)

    def ask_val(self, cid: str, ids: list[str]) -> Key:
        return self._add(["val", cid, len(ids)], ids)

    def unissued(self) -> list[dict[str, Any]]:
        """Outstanding requests not yet handed out by this process (after a resume)."""
        pending = [o for o in self.outstanding if repr(o["key"]) not in self._issued]
        self._issued.update(repr(o["key"]) for o in pending)
        return pending

    def is_out(self, kind: str, cid: str) -> bool:
        return any(o["key"][0] == kind and o["key"][1] == cid for o in self.outstanding)

    def outstanding_runs(self) -> int:
        return sum(len(o["ids"]) for o in self.outstanding)

    def complete(self, key: Key) -> None:
        """Log `key` as told and drop it from the outstanding requests."""
        self.outstanding = [o for o in self.outstanding if o["key"] != key]
        self._issued.discard(repr(key))
        self.completions.append(list(key))

    # --- training examples scored, per candidate -----------------------------------------
    def count_training(self, train_ids: Iterable[str],
                       scored: Callable[[], Iterable[tuple[str, str]]]) -> frozenset[str]:
        """Start counting, once per process: the training ids (returned as a set) and, from
        `scored()`, the (candidate, example) pairs the score table already holds for
        training (none at the start of a search; a resumed one reads its table once)."""
        if self._train is None:
            self._train = frozenset(train_ids)
            self._scored = {}
            self.count_scored(scored())
        return self._train

    def train_scored(self, cid: str) -> int:
        """How many training examples `cid` is scored on (after `count_training`)."""
        return self._scored.get(cid, 0)

    def count_scored(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(candidate, example) pairs newly scored on training (each pair once)."""
        if self._train is None:
            return  # not counting yet: `count_training` reads them from the table
        for cid, example_id in pairs:
            if example_id in self._train:
                self._scored[cid] = self._scored.get(cid, 0) + 1

    # --- state ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"batches": [list(b) for b in self.batches], "steps": dict(self.steps),
                "outstanding": [dict(o) for o in self.outstanding],
                "completions": [list(k) for k in self.completions],
                "member_steps": self.member_steps, "stop_note": self.stop_note}

    @classmethod
    def from_json(cls, data: dict | None) -> SteadySchedule:
        schedule = cls()
        data = data or {}
        schedule.batches = [list(b) for b in data.get("batches", [])]
        schedule.steps = dict(data.get("steps", {}))
        schedule.outstanding = [dict(o) for o in data.get("outstanding", [])]
        schedule.completions = [list(k) for k in data.get("completions", [])]
        schedule.member_steps = int(data.get("member_steps", 0))
        schedule.stop_note = data.get("stop_note")
        return schedule
