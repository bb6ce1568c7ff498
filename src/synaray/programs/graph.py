"""Turning the symbolic wiring of a functional program into an ordered list of nodes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from synaray.errors import ConfigError
from synaray.modules.module import Module
from synaray.modules.symbolic import SymbolicDataModel

__all__ = ["Node", "assign_names", "collect_nodes"]


@dataclass
class Node:
    """One call of a module in the graph: which module, fed by which values."""

    module: Module
    output: SymbolicDataModel
    parents: list[SymbolicDataModel]


def collect_nodes(inputs: list[SymbolicDataModel],
                  outputs: list[SymbolicDataModel]) -> list[Node]:
    """The nodes between `inputs` and `outputs`, parents before children."""
    input_ids = {id(s) for s in inputs}
    order: list[Node] = []
    state: dict[int, str] = {}

    def visit(sym: SymbolicDataModel) -> None:
        key = id(sym)
        if state.get(key) == "done" or key in input_ids:
            return
        if state.get(key) == "visiting":
            raise ConfigError("The program graph has a cycle.")
        if sym.producer is None:
            raise ConfigError(
                f"Output {sym!r} depends on an Input that is not in the program's `inputs`."
            )
        state[key] = "visiting"
        for parent in sym.parents:
            visit(parent)
        state[key] = "done"
        order.append(Node(sym.producer, sym, list(sym.parents)))

    for out in outputs:
        if not isinstance(out, SymbolicDataModel):
            raise ConfigError(
                f"Program outputs must come from calling modules on Input(...); received "
                f"{type(out).__name__}."
            )
        visit(out)
    return order


def _base_name(module: Module) -> str:
    return re.sub(r"_\d+$", "", module.name)


def assign_names(modules: list[Module]) -> None:
    """Give unnamed modules deterministic names in graph order; refuse duplicate names."""
    taken = {m.name for m in modules if m.has_name}
    counts: dict[str, int] = {}
    for module in modules:
        if module.has_name:
            continue
        base = _base_name(module)
        n = counts.get(base, 0)
        name = base if n == 0 else f"{base}_{n}"
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        counts[base] = n + 1
        taken.add(name)
        module._set_name(name)
    names = [m.name for m in modules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"Module names must be unique in a program; repeated: {duplicates}.")
