"""The typed boundaries of a search: what the loop, the trainer, both engines and the
optimizer actor use of an optimizer and of an evaluation backend (no `hasattr` probes).

`SearchOptimizer` is met by `synaray.optimizers.Optimizer` (the search itself) and by the
driver's `OptimizerView` (a mirror of one running in an actor) for what callbacks read;
`SearchEngine` by every `synaray.engines.Engine` and by the optimizer actor's
`EvaluatorPool`.

Example:
    >>> from synaray.engines import LocalEngine
    >>> isinstance(LocalEngine(), SearchEngine)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from synaray.optimizers.protocol import EvalRequest, EvalResult

__all__ = ["SearchEngine", "SearchOptimizer"]


@runtime_checkable
class SearchOptimizer(Protocol):
    """An ask/tell search as the loop and the callbacks see it."""

    epoch: int
    epochs: int
    phase: str
    generation: int
    stop_reason: str | None
    best_id: str | None
    history: list[dict]
    population: list[str]
    spent: Any

    @property
    def finished(self) -> bool: ...

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def best_val_reward(self) -> float | None: ...

    def best(self) -> Any: ...


@runtime_checkable
class SearchEngine(Protocol):
    """Runs evaluation requests; one result per (candidate, example), in request order."""

    async def evaluate(self, requests: list[EvalRequest],
                       on_results: Callable[[list[EvalResult]], None] | None = None,
                       ) -> list[EvalResult]: ...
