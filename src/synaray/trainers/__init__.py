"""Trainers: `fit`, `evaluate` (what `Program.fit` / `Program.evaluate` run)."""

from synaray.trainers.trainer import evaluate, fit

__all__ = ["evaluate", "fit"]
