"""Racing on validation: a candidate is scored rung by rung on the validation examples, and
goes on to the next rung only if it kept up with the best candidate on the rung it finished
(not clearly behind it on the same examples: see `kept_up`).

Successive halving against an incumbent: weak candidates stop after a quarter of the
validation set, middling ones after half, so the calls go to the promising ones. The rungs
are fixed prefixes of the validation ids (the same examples for every candidate: paired
comparisons): a quarter, a half, then all of them (each at least `RUNG_MINIMUM`).

Example:
    >>> [len(r) for r in racing_rungs([str(i) for i in range(30)])]
    [8, 15, 30]
    >>> [len(r) for r in racing_rungs(["a", "b", "c"])]
    [3]
    >>> racing_rung([str(i) for i in range(30)])[-1]
    '7'
    >>> kept_up([1, 0, 0, 0, 0, 1, 0, 0], [1, 1, 1, 1, 0, 1, 1, 1])  # 2 of 8 against 7
    False
    >>> kept_up([1, 1, 1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1, 0, 1])  # one example behind
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["RACE_Z", "RUNG_FRACTIONS", "RUNG_MINIMUM", "expected_race_cost", "kept_up",
           "racing_rung", "racing_rungs"]

RUNG_FRACTIONS = (1 / 4, 1 / 2)
RUNG_MINIMUM = 5
#: how many standard errors of the paired difference a challenger may trail the best by on a
#: rung and still go on (1: about one example in eight or fifteen, for a 0/1 reward)
RACE_Z = 1.0


def racing_rungs(val_ids: list[str]) -> list[list[str]]:
    """The rungs, smallest first; the last is the whole validation set."""
    n = len(val_ids)
    sizes = sorted({min(n, max(RUNG_MINIMUM, math.ceil(n * f))) for f in RUNG_FRACTIONS}
                   | {n})
    return [list(val_ids[:size]) for size in sizes if size > 0]


def racing_rung(val_ids: list[str]) -> list[str]:
    """The first rung."""
    rungs = racing_rungs(val_ids)
    return rungs[0] if rungs else []


def expected_race_cost(n_val: int, survival: float = 0.5, done: int = 0) -> float:
    """Program runs a challenger is expected to cost from here: every rung it reaches, with
    `survival` the chance of keeping up on each rung, `done` validation examples (a prefix
    of the rungs) already scored; its next rung is certain.

    Example:
        >>> expected_race_cost(30), expected_race_cost(30, done=8), expected_race_cost(30, done=30)
        (15.25, 14.5, 0.0)
    """
    sizes = [len(r) for r in racing_rungs([str(i) for i in range(n_val)])]
    cost, reach, previous = 0.0, 1.0, 0
    for size in sizes:
        if size > done:
            cost += reach * (size - max(previous, done))
            reach *= survival
        previous = size
    return cost


def kept_up(mine: Sequence[float] | np.ndarray, best: Sequence[float] | np.ndarray,
            z: float = RACE_Z) -> bool:
    """Whether a candidate goes on to the next rung: its rewards `mine` on the rung's
    examples are not clearly below the best's rewards `best` on the same examples (paired,
    same order). Clearly below: the mean of the differences plus `z` of their standard
    errors is still negative. A strict "not below the best's mean" stops a good challenger
    that trails by one example of eight, which is noise (on the bench at 600 calls two
    challengers at 12/15 were stopped behind a best at 13/15 and never validated). Without
    paired scores everyone goes on.

    Example:
        >>> kept_up([0.0] * 8, [1.0] * 8), kept_up([1.0] * 8, [1.0] * 8), kept_up([], [])
        (False, True, True)
    """
    mine, best = np.asarray(mine, dtype=float), np.asarray(best, dtype=float)
    if mine.size == 0 or mine.size != best.size:
        return True
    differences = mine - best
    mean = float(differences.mean())
    if mean >= 0:
        return True
    spread = float(differences.std(ddof=1)) if differences.size > 1 else 0.0
    return mean + z * spread / math.sqrt(differences.size) >= -1e-12
