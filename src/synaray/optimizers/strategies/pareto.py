"""Ranking, PBT quantiles and the per-example Pareto front of a population.

Everything here is a pure function of scores: no RNG, no state. Higher rewards are better.

The front (GEPA's "instance front"): on each example the members with the highest reward
are its best set (examples where that reward is <= 0 are skipped: nobody is good there).
A member belongs to the front if it is in some best set; then, weakest first, a front member
is dropped when another front member is in every best set it is in (it covers nothing that
the other does not). What remains is a small set such that every example that someone
solved best is still covered: a member that alone (or tied, but not redundantly) is best
on some example survives.

Example:
    >>> scores = {"a": {"e1": 1.0, "e2": 1.0, "e3": 0.0},
    ...           "b": {"e1": 1.0, "e2": 0.0, "e3": 0.0},
    ...           "c": {"e1": 0.0, "e2": 0.0, "e3": 1.0}}
    >>> ranked = rank({cid: sum(s.values()) / 3 for cid, s in scores.items()})
    >>> ranked, quantiles(ranked, 0.25)
    (['a', 'b', 'c'], (['a'], ['c']))
    >>> pareto_front(scores, ranked)
    ['a', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["GenerationRanking", "exploit_losers", "pareto_front", "quantiles", "rank",
           "shared_examples"]


@dataclass
class GenerationRanking:
    """One generation's minibatch, its members ranked on it and their Pareto front: what
    the explore step needs to know (never stored).

    Example:
        >>> GenerationRanking(["e1"], ["a", "b"], ["a"]).front
        ['a']
    """

    batch_ids: list[str]
    ranked: list[str]
    front: list[str]


def rank(scores: Mapping[str, float | None]) -> list[str]:
    """Ids best first; a missing score (None) ranks last; ties keep the mapping's order."""
    order = {cid: n for n, cid in enumerate(scores)}
    return sorted(scores, key=lambda cid: (scores[cid] is None, -(scores[cid] or 0.0),
                                           order[cid]))


def quantiles(ranked: Sequence[str], fraction: float) -> tuple[list[str], list[str]]:
    """(top, bottom) quantiles of a ranking, each `ceil(n * fraction)` capped at `n // 2`.

    The cap keeps the two disjoint; a population of one has empty quantiles.
    """
    size = min(math.ceil(len(ranked) * fraction), len(ranked) // 2)
    if size <= 0:
        return [], []
    return list(ranked[:size]), list(ranked[-size:])


def exploit_losers(ranked: Sequence[str], bottom: Sequence[str],
                   front: Sequence[str]) -> list[str]:
    """The members that give up their slot this generation: as many as the bottom quantile.

    Weakest first, bottom members off the Pareto front go first; a bottom member on the
    front (alone best on some example) is kept and the weakest off-front member above it
    goes in its place; only when every non-leader is on the front do front members of the
    bottom quantile go. So the front keeps its specialists and yet every generation makes
    room for new children (with small populations on small minibatches nearly every member
    wins some example, and a rule that spared all front members stalled the search). The
    leader never goes.

    Example:
        >>> exploit_losers(["a", "b", "c", "d"], ["d"], ["a", "d"])
        ['c']
        >>> exploit_losers(["a", "b", "c", "d"], ["d"], ["a", "b", "c", "d"])
        ['d']
    """
    if not bottom:
        return []
    protected = set(front)
    weakest_first = list(reversed(ranked[1:]))
    ordered = ([cid for cid in weakest_first if cid in bottom and cid not in protected]
               + [cid for cid in weakest_first if cid not in bottom and cid not in protected]
               + [cid for cid in weakest_first if cid in bottom and cid in protected])
    return ordered[:len(bottom)]


def shared_examples(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Example ids scored for every member, in the first member's order."""
    members = list(scores.values())
    if not members:
        return []
    common = set(members[0]).intersection(*members[1:])
    return [e for e in members[0] if e in common]


def _best_sets(scores: Mapping[str, Mapping[str, float]],
               examples: Sequence[str]) -> list[frozenset[str]]:
    sets = []
    for example in examples:
        top = max(s[example] for s in scores.values())
        if top > 0:
            sets.append(frozenset(c for c, s in scores.items() if s[example] == top))
    return sets


def pareto_front(scores: Mapping[str, Mapping[str, float]], ranked: Sequence[str]) -> list[str]:
    """The per-example Pareto front over the examples all members share, best first.

    Args:
        scores: per member, its reward on each example it was scored on.
        ranked: the members best first (decides which of two redundant members stays).
    """
    best_sets = _best_sets(scores, shared_examples(scores))
    front = {c for s in best_sets for c in s}
    for cid in reversed(ranked):
        if cid not in front:
            continue
        mine = [s for s in best_sets if cid in s]
        if any(all(other in s for s in mine) for other in front - {cid}):
            front.discard(cid)
    return [c for c in ranked if c in front]
