"""Trainers: `fit`, `evaluate` (what `Program.fit` / `Program.evaluate` run), and the search
loop they share with the engines (`search_loop`, `events`, `stop_conditions`).

`fit` and `evaluate` load on first use, so engines can import the loop without importing
the trainer (which imports the engines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["evaluate", "fit"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from synaray.trainers import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'synaray.trainers' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from synaray.trainers.trainer import evaluate, fit
