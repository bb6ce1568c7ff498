"""Selectors: pick k distinct items by score (demos by reward, parents by fitness).

Contract (`Selector`): `select(scores, k, rng)` returns `min(k, len(scores))` distinct indices
into `scores`; higher scores are better; every random draw comes from the injected numpy
`Generator` (never the module-level `random`), so a seeded search repeats exactly; `scores`
is not mutated.

Example:
    >>> import numpy as np
    >>> BestSelector().select([0.2, 0.9, 0.5], 2, np.random.default_rng(0))
    [1, 2]
    >>> len(SoftmaxSelector(0.3).select([0.2, 0.9, 0.5], 2, np.random.default_rng(0)))
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from synaray.errors import ConfigError

__all__ = ["SAMPLINGS", "BestSelector", "RandomSelector", "Selector", "SoftmaxSelector",
           "make_selector"]

SAMPLINGS = ("best", "random", "softmax")


class Selector(Protocol):
    """Chooses k distinct indices of `scores` (see the module docstring for the contract)."""

    def select(self, scores: Sequence[float], k: int, rng: np.random.Generator) -> list[int]:
        ...


class BestSelector:
    """The k highest scores; ties go to the lower index. Draws nothing from `rng`."""

    def select(self, scores: Sequence[float], k: int, rng: np.random.Generator) -> list[int]:
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return order[:max(0, k)]


class RandomSelector:
    """k indices uniformly at random, without replacement."""

    def select(self, scores: Sequence[float], k: int, rng: np.random.Generator) -> list[int]:
        k = min(max(0, k), len(scores))
        if k == 0:
            return []
        return [int(i) for i in rng.choice(len(scores), size=k, replace=False)]


class SoftmaxSelector:
    """k indices without replacement, with probabilities `softmax(scores / temperature)`.

    A low temperature concentrates the picks on the best scores; a high one approaches
    uniform sampling.
    """

    def __init__(self, temperature: float = 0.3) -> None:
        if temperature <= 0:
            raise ConfigError(f"Invalid value for argument `temperature`. Received: "
                              f"{temperature!r}. Expected a number > 0.")
        self.temperature = temperature

    def select(self, scores: Sequence[float], k: int, rng: np.random.Generator) -> list[int]:
        k = min(max(0, k), len(scores))
        if k == 0:
            return []
        logits = np.asarray(scores, dtype=float) / self.temperature
        weights = np.exp(logits - logits.max())
        # Weights can underflow to exactly 0; keep every item drawable so k distinct exist.
        weights = np.maximum(weights, 1e-12)
        return [int(i) for i in rng.choice(len(scores), size=k, replace=False,
                                           p=weights / weights.sum())]


def make_selector(sampling: str, temperature: float = 0.3,
                  argument: str = "sampling") -> Selector:
    """The selector named `sampling` ("softmax", "random" or "best")."""
    if sampling == "softmax":
        return SoftmaxSelector(temperature)
    if sampling == "random":
        return RandomSelector()
    if sampling == "best":
        return BestSelector()
    raise ConfigError(f"Invalid value for argument `{argument}`. Received: {sampling!r}. "
                      f"Expected one of {list(SAMPLINGS)}.")
