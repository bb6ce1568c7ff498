"""Modules: the building blocks of programs (`Input`, `Generator`, `ChainOfThought`, ...)."""

from synaray.modules.chain_of_thought import ChainOfThought
from synaray.modules.generator import Generator
from synaray.modules.module import Module
from synaray.modules.symbolic import Input, SymbolicDataModel

__all__ = ["ChainOfThought", "Generator", "Input", "Module", "SymbolicDataModel"]
