"""Budget presets: how a search of N LM calls is shaped by the data at hand.

`plan_search` turns a budget of LM calls and the sizes of the training and validation data
into the knobs of a `PopulationSearch`: the minibatch, the population, how many demo sets
and instruction proposals make up the first (diverse) generation, how many validation
examples are used and how many leaders are promoted to them each generation. A user then
gives `auto="light"` (or `lm_calls=600`) instead of guessing that one epoch of 30 examples
is two generations. Knobs given explicitly to the optimizer win over the plan.

Example:
    >>> plan = plan_search(150, n_train=30, n_val=30)
    >>> plan.minibatch_size, plan.population_size, plan.val_size, plan.demo_sets
    (10, 8, 30, 7)
    >>> plan_search(600, n_train=100, n_val=100).val_size
    100
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from synaray.errors import ConfigError
from synaray.optimizers.strategies.racing import expected_race_cost

__all__ = ["PRESET_LM_CALLS", "SearchPlan", "plan_search", "preset_lm_calls"]

# The LM calls of each preset (the two bench budgets, and a larger one).
PRESET_LM_CALLS = {"light": 150, "medium": 600, "heavy": 2000}
# The preset's few-shot range: the main job measured 5-8 demos above 1-4 on intent.
PRESET_DEMOS = (4, 8)


@dataclass(frozen=True)
class SearchPlan:
    """The knobs a budget chose (JSON with `to_dict`)."""

    lm_calls: int
    minibatch_size: int
    population_size: int
    demo_sets: int
    instruction_proposals: int
    val_size: int
    promote_k: int
    generations: int
    epochs: int

    def to_dict(self) -> dict:
        return asdict(self)


def preset_lm_calls(auto: str | None, lm_calls: int | None) -> int | None:
    """The LM-call budget of `auto` or `lm_calls` (None: no preset); checks both."""
    if auto is not None and lm_calls is not None:
        raise ConfigError(f"Invalid value for argument `lm_calls`. Received: {lm_calls!r} "
                          f"with auto={auto!r}. Expected one of them, not both.")
    if auto is not None:
        if auto not in PRESET_LM_CALLS:
            raise ConfigError(f"Invalid value for argument `auto`. Received: {auto!r}. "
                              f"Expected one of {list(PRESET_LM_CALLS)} or None.")
        return PRESET_LM_CALLS[auto]
    if lm_calls is not None and (isinstance(lm_calls, bool) or not isinstance(lm_calls, int)
                                 or lm_calls < 20):
        raise ConfigError(f"Invalid value for argument `lm_calls`. Received: {lm_calls!r}. "
                          "Expected an integer >= 20.")
    return lm_calls


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def plan_search(lm_calls: int, n_train: int, n_val: int, n_modules: int = 1,
                with_proposer: bool = False, minibatch_size: int | None = None,
                population_size: int | None = None, race: bool = True) -> SearchPlan:
    """The knobs of a search of `lm_calls` calls on this data (see the module docstring).

    Each program run costs `n_modules` calls (one per trainable module). The minibatch is a
    fifteenth of the runs (5 to 40 examples, at most the training set); validation uses a
    fifth of the runs (10 examples at least, at most the validation set). With validation
    data and `race` (racing, generation by generation), the first generation (4 to 16
    members: the seed, demo sets and, with a proposer LM, up to 2 instruction proposals) is
    as many challengers as the runs left after the first minibatch and the seed's
    validation pay for in the race (`expected_race_cost`, `validation_race.py`), and the
    elite is the 2 best validated candidates; otherwise it holds about half the runs' worth
    of minibatch scores.
    """
    runs = max(1, lm_calls // max(1, n_modules))
    batch = minibatch_size or _clamp(runs // 15, 5, 40)
    batch = max(1, min(batch, n_train))
    val_size = min(n_val, max(10, runs // 5)) if n_val else 0
    if population_size:
        population = population_size
    elif val_size and race:  # the program validated, then challengers raced on validation
        challengers = (runs - batch - val_size) / expected_race_cost(val_size)
        population = _clamp(round(challengers) + 1, 4, 16)
    else:
        population = _clamp(round(runs / (2 * batch)), 4, 16)
    proposals = min(2, population // 4) if with_proposer else 0
    demo_sets = max(0, population - 1 - proposals)
    promote_k = 2 if n_val else 0
    per_generation = population * batch + promote_k * val_size
    generations = 1 + max(1, math.ceil((runs - batch) / max(1, per_generation)))
    epochs = max(1, math.ceil(generations * batch / max(1, n_train)))
    return SearchPlan(lm_calls=lm_calls, minibatch_size=batch, population_size=population,
                      demo_sets=demo_sets, instruction_proposals=proposals, val_size=val_size,
                      promote_k=promote_k, generations=generations, epochs=epochs)
