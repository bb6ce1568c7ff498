"""Racing on validation: a candidate is scored rung by rung on the validation examples, and
goes on to the next rung only if it kept up with the best candidate on the rung it finished.

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
    >>> kept_up(0.4, 0.5), kept_up(0.5, 0.5), kept_up(0.2, None)
    (False, True, True)
"""

from __future__ import annotations

import math

__all__ = ["RUNG_FRACTIONS", "RUNG_MINIMUM", "expected_race_cost", "kept_up", "racing_rung",
           "racing_rungs"]

RUNG_FRACTIONS = (1 / 4, 1 / 2)
RUNG_MINIMUM = 5


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


def kept_up(rung_score: float | None, best_rung_score: float | None) -> bool:
    """Whether a candidate goes on to the next rung: not below the best's score on the same
    examples (ties go on; without a best to compare with, everyone goes on)."""
    if rung_score is None or best_rung_score is None:
        return True
    return rung_score >= best_rung_score
