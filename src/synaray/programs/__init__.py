"""Programs: graphs of modules, built functionally (`Program`) or as a chain (`Sequential`)."""

from synaray.programs.program import Program
from synaray.programs.sequential import Sequential

__all__ = ["Program", "Sequential"]
