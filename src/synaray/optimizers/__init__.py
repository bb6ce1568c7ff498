"""Optimizers: ask/tell search over program states (instructions and few-shot examples).

Pure logic plus their own LM calls for proposals: nothing here imports Ray or engines.
"""

from __future__ import annotations

from typing import Any

from synaray.component_registry import ComponentRegistry
from synaray.optimizers.budget import Budget, BudgetSpent
from synaray.optimizers.omega import OMEGA
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.population_search import PopulationSearch
from synaray.optimizers.protocol import Candidate, EvalRequest, EvalResult, candidate_id
from synaray.optimizers.random_few_shot import RandomFewShot
from synaray.optimizers.score_table import ScoreTable

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

REGISTRY = ComponentRegistry("optimizer", Optimizer, (RandomFewShot, PopulationSearch, OMEGA),
                             module=__name__, expected="or an Optimizer class or instance")
ALL_OBJECTS: dict[str, type] = REGISTRY.names


def get(identifier: Any) -> Any:
    """An optimizer from None, a name (`"random_few_shot"`), a config dict, class or instance."""
    return REGISTRY.get(identifier)
