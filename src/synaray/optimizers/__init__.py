"""Optimizers: ask/tell search over program states (instructions and few-shot examples).

Pure logic plus their own LM calls for proposals: nothing here imports Ray or engines.
"""

from __future__ import annotations

from typing import Any

from synaray.errors import ConfigError
from synaray.optimizers.budget import Budget, BudgetSpent
from synaray.optimizers.omega import OMEGA
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.population_search import PopulationSearch
from synaray.optimizers.protocol import Candidate, EvalRequest, EvalResult, candidate_id
from synaray.optimizers.random_few_shot import RandomFewShot
from synaray.optimizers.score_table import ScoreTable
from synaray.saving import deserialize_object

__all__ = [
    "ALL_OBJECTS",
    "OMEGA",
    "Budget",
    "BudgetSpent",
    "Candidate",
    "EvalRequest",
    "EvalResult",
    "Optimizer",
    "PopulationSearch",
    "RandomFewShot",
    "ScoreTable",
    "candidate_id",
    "get",
]

ALL_OBJECTS: dict[str, type] = {}


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _register(cls: type) -> type:
    ALL_OBJECTS[cls.__name__] = cls
    ALL_OBJECTS[_snake(cls.__name__)] = cls
    return cls


_register(RandomFewShot)
_register(PopulationSearch)
ALL_OBJECTS.update(OMEGA=OMEGA, omega=OMEGA)  # an acronym: not snake-cased letter by letter


def get(identifier: Any) -> Any:
    """An optimizer from None, a name (`"random_few_shot"`), a config dict, class or instance."""
    if identifier is None or isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        if identifier in ALL_OBJECTS:
            return ALL_OBJECTS[identifier]()
    elif isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize_object(identifier)
    elif isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise ConfigError(f"Could not interpret optimizer identifier: {identifier!r}. Expected one "
                      f"of {sorted(k for k in ALL_OBJECTS if '_' in k or k.islower())}, a config "
                      "dict, or an Optimizer instance.")
