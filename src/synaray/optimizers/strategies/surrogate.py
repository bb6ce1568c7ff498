"""A surrogate over the (instruction, demo set) choices of each module (MIPROv2's way).

MIPROv2 fits a model of which instruction and which demo set each module uses, and proposes
the combinations it expects to score best. Here, as pure functions (no LM, no Ray):

- an *option* is what one part of one module holds in a candidate: its instructions or its
  demo set ("examples"), identified by canonical JSON (`options_seen`);
- each candidate scored on validation ids S gives a paired observation: its mean on S minus
  the best candidate's mean on S, weighted by |S| (`relative_scores`); comparing on the same
  examples keeps the difficulty of the rung out of the model;
- an additive model, the sum of one effect per (module, part) option, is fitted to those
  observations by weighted ridge regression (`fit_effects`): the penalty acts as `prior`
  pseudo-observations (in validation examples) of a zero effect for every option, so an
  option seen rarely, on a few examples, stays near 0 (the best's level);
- `propose` returns the k untried combinations (one option per module per part) with the
  highest predicted value, best first; a combination whose state is already a candidate is
  skipped. The additive model is what makes combinations never seen together predictable:
  the best instruction with the best demo set, even when no candidate held both.

Example:
    >>> import numpy as np
    >>> def state(instructions, demos):
    ...     return {"gen": {"instructions": instructions, "examples": demos}}
    >>> candidates = {"seed": state(None, []), "a": state("Think.", []),
    ...               "b": state(None, [{"q": 1}])}
    >>> scores = {"seed": {"v1": 0.0, "v2": 0.0, "v3": 1.0, "v4": 0.0},
    ...           "a": {"v1": 1.0, "v2": 0.0, "v3": 1.0, "v4": 0.0},
    ...           "b": {"v1": 0.0, "v2": 1.0, "v3": 1.0, "v4": 0.0}}
    >>> [p.state for p in propose(candidates, scores, "seed", 1, np.random.default_rng(0))]
    [{'gen': {'instructions': 'Think.', 'examples': [{'q': 1}]}}]
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from synaray.data.schema_utils import canonical_json

__all__ = ["PARTS", "Proposed", "Slot", "fit_effects", "option_key", "options_seen",
           "propose", "relative_scores"]

PARTS = ("instructions", "examples")
# (module, part): where an option goes.
Slot = tuple[str, str]
# Validation examples' worth of zero-effect pseudo-observations per option.
DEFAULT_PRIOR = 4.0
# Effects are compared to this many decimals.
_DIGITS = 9


def option_key(value: object) -> str:
    """The identity of an option (instructions or a demo set): its canonical JSON."""
    return canonical_json(value)


def options_seen(states: Mapping[str, dict]) -> dict[Slot, dict[str, list[str]]]:
    """Per (module, part) of the modules every state has: option key -> the candidates
    holding it (in the order of `states`)."""
    modules = sorted(set.intersection(*(set(s) for s in states.values()))) if states else []
    seen: dict[Slot, dict[str, list[str]]] = {}
    for module in modules:
        for part in PARTS:
            slot = seen.setdefault((module, part), {})
            for cid, state in states.items():
                slot.setdefault(option_key(state[module].get(part)), []).append(cid)
    return seen


def relative_scores(scores: Mapping[str, Mapping[str, float]],
                    best: str) -> dict[str, tuple[float, int]]:
    """Candidate -> (its mean on S minus the best's mean on S, |S|), S the example ids
    both were scored on (candidates sharing no example with the best are left out)."""
    reference = scores.get(best, {})
    relative = {}
    for cid, rewards in scores.items():
        shared = [e for e in rewards if e in reference]
        if shared:
            mine = float(np.mean([rewards[e] for e in shared]))
            theirs = float(np.mean([reference[e] for e in shared]))
            relative[cid] = (mine - theirs, len(shared))
    return relative


def fit_effects(states: Mapping[str, dict], relative: Mapping[str, tuple[float, int]],
                prior: float = DEFAULT_PRIOR) -> dict[Slot, dict[str, float]]:
    """The additive model: an effect per option of each (module, part), fitted by weighted
    ridge regression to the paired `relative` scores of the candidates in `states` (weight
    |S|); the ridge penalty `prior` is that many pseudo-observations of effect 0."""
    if prior <= 0:
        raise ValueError(f"Invalid value for argument `prior`. Received: {prior!r}. "
                         "Expected a number > 0.")
    observed = [cid for cid in states if cid in relative]
    seen = options_seen({cid: states[cid] for cid in observed})
    columns = [(slot, key) for slot, options in seen.items() for key in options]
    if not columns:
        return {slot: {} for slot in seen}
    index = {column: j for j, column in enumerate(columns)}
    design = np.zeros((len(observed), len(columns)))
    for i, cid in enumerate(observed):
        for slot, options in seen.items():
            for key, holders in options.items():
                if cid in holders:
                    design[i, index[(slot, key)]] = 1.0
    y = np.array([relative[cid][0] for cid in observed])
    root_w = np.sqrt(np.array([float(relative[cid][1]) for cid in observed]))
    # ridge as least squares on the rows plus sqrt(prior) * identity (target 0)
    a = np.vstack([design * root_w[:, None], np.sqrt(prior) * np.eye(len(columns))])
    b = np.concatenate([y * root_w, np.zeros(len(columns))])
    effects = np.linalg.lstsq(a, b, rcond=None)[0]
    fitted: dict[Slot, dict[str, float]] = {slot: {} for slot in seen}
    for (slot, key), j in index.items():
        fitted[slot][key] = float(effects[j])
    return fitted


@dataclass
class Proposed:
    """A combination the model expects to score well: its full `state`, the predicted value
    relative to the best (`predicted`), the candidates it takes each option from
    (`parents`, deduplicated: the best for the options it holds, else the holder that
    scored best relative to it) and which slot came from which (`sources`)."""

    state: dict
    predicted: float
    parents: list[str] = field(default_factory=list)
    sources: dict[Slot, str] = field(default_factory=dict)


def propose(candidates: Mapping[str, dict], scores: Mapping[str, Mapping[str, float]],
            best: str, k: int, rng: np.random.Generator,
            prior: float = DEFAULT_PRIOR) -> list[Proposed]:
    """The `k` untried combinations of the options seen in the scored candidates with the
    highest predicted value, best first.

    Args:
        candidates: every known candidate: id -> state (a combination equal to one of them
            is skipped).
        scores: the scored candidates: id -> {example id: reward} (validation).
        best: the reference candidate (the paired scores are relative to it); it must be
            in `scores`.
        k: how many combinations at most.
        rng: breaks ties between options of equal effect (one permutation per slot).
        prior: the ridge penalty, in pseudo-observations of effect 0 (`fit_effects`).
    """
    if best not in scores:
        raise ValueError(f"Invalid value for argument `best`. Received: {best!r}. Expected "
                         "a candidate with scores.")
    states = {cid: candidates[cid] for cid in scores if cid in candidates}
    if k <= 0 or len(states) < 2:
        return []
    relative = relative_scores(scores, best)
    effects = fit_effects(states, relative, prior)
    # where each option is taken from: the best when it holds it, else the holder that
    # scored best relative to it (the earlier on ties)
    def preference(cid: str) -> tuple[bool, float]:
        return cid != best, -relative[cid][0] if cid in relative else np.inf

    holders = {slot: {key: sorted(cids, key=preference) for key, cids in options.items()}
               for slot, options in options_seen(states).items()}
    slots = sorted(effects)
    ranked: list[list[tuple[str, float]]] = []
    for slot in slots:
        # rounded: options the data cannot tell apart tie despite floating-point noise
        options = [(key, round(value, _DIGITS)) for key, value in effects[slot].items()]
        order = rng.permutation(len(options))  # ties: a random order, then stable sort
        shuffled = [options[int(i)] for i in order]
        ranked.append(sorted(shuffled, key=lambda kv: -kv[1]))
    known = {canonical_json(s) for s in candidates.values()}
    base = candidates[best]
    found: list[Proposed] = []
    # best-first over index tuples (the sum is additive: neighbours are never better)
    start = (0,) * len(slots)
    heap = [(-_value(ranked, start), start)]
    visited = {start}
    while heap and len(found) < k:
        negative, picks = heapq.heappop(heap)
        state, sources = _combine(base, states, slots, ranked, picks, holders)
        if canonical_json(state) not in known:
            known.add(canonical_json(state))
            parents = list(dict.fromkeys(sources.values()))
            found.append(Proposed(state, -negative, parents, sources))
        for d in range(len(slots)):
            if picks[d] + 1 < len(ranked[d]):
                step = (*picks[:d], picks[d] + 1, *picks[d + 1:])
                if step not in visited:
                    visited.add(step)
                    heapq.heappush(heap, (-_value(ranked, step), step))
    return found


def _value(ranked: list[list[tuple[str, float]]], picks: tuple[int, ...]) -> float:
    return float(sum(ranked[d][i][1] for d, i in enumerate(picks)))


def _combine(base: dict, states: Mapping[str, dict], slots: list[Slot],
             ranked: list[list[tuple[str, float]]], picks: tuple[int, ...],
             holders: Mapping[Slot, Mapping[str, list[str]]]) -> tuple[dict, dict[Slot, str]]:
    """`base` with each slot's picked option (parts left as they are where equal), and the
    candidate each option is taken from (the first of its holders)."""
    state = copy.deepcopy(base)
    sources: dict[Slot, str] = {}
    for (module, part), options, i in zip(slots, ranked, picks, strict=True):
        key = options[i][0]
        source = holders[(module, part)][key][0]
        sources[(module, part)] = source
        if option_key(state[module].get(part)) != key:
            state[module][part] = copy.deepcopy(states[source][module].get(part))
    return state, sources
