"""Names of components: the snake-case form of a class name (a reward's default name, the
names `synaray.rewards.get` and its siblings accept)."""

from __future__ import annotations

import re

__all__ = ["to_snake_case"]


def to_snake_case(name: str) -> str:
    """`ExactMatch` -> `exact_match`, `LMAsJudge` -> `lm_as_judge`, `TokenF1` -> `token_f1`.

    Example:
        >>> to_snake_case("LMAsJudge"), to_snake_case("RandomFewShot"), to_snake_case("OMEGA")
        ('lm_as_judge', 'random_few_shot', 'omega')
    """
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
