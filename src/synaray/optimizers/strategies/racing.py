"""Racing on validation: a promoted candidate is scored on a first rung of the validation
examples, and on the rest only if it kept up with the best candidate on that rung.

Successive halving in its simplest form: weak candidates stop after a third of the
validation set, so the calls go to the promising ones. The rung is a fixed prefix of the
validation ids (the same examples for every candidate: paired comparisons).

Example:
    >>> racing_rung([str(i) for i in range(30)])[-1], len(racing_rung(["a", "b", "c"]))
    ('9', 3)
    >>> kept_up(0.4, 0.5), kept_up(0.5, 0.5), kept_up(0.2, None)
    (False, True, True)
"""

from __future__ import annotations

import math

__all__ = ["RUNG_FRACTION", "RUNG_MINIMUM", "kept_up", "racing_rung"]

RUNG_FRACTION = 1 / 3
RUNG_MINIMUM = 5


def racing_rung(val_ids: list[str]) -> list[str]:
    """The first rung: a third of the validation ids (at least 5, at most all of them)."""
    size = max(RUNG_MINIMUM, math.ceil(len(val_ids) * RUNG_FRACTION))
    return list(val_ids[:size])


def kept_up(rung_score: float | None, best_rung_score: float | None) -> bool:
    """Whether a candidate goes on to the full validation set: not below the best's rung
    score (ties go on; without a best to compare with, everyone goes on)."""
    if rung_score is None or best_rung_score is None:
        return True
    return rung_score >= best_rung_score
