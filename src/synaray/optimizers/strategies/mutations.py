"""Mutations of program states: pure functions returning `(new_state, operations)`.

A program state is `{module: {"instructions": str | None, "examples": [...]}}`. No function
here mutates its inputs or draws randomness itself: callers pass the choices they drew (the
RNG-using helper `draw_crossover` takes the generator explicitly). `operations` is a short,
readable list of what changed (after Ray PBT's `_explore`); it becomes the child's lineage
`operation`.

Example:
    >>> state = {"gen": {"instructions": None, "examples": []}}
    >>> new, ops = with_instructions(state, "gen", "Answer briefly.", "reflect")
    >>> new["gen"]["instructions"], ops, state["gen"]["instructions"]
    ('Answer briefly.', ['reflect gen.instructions (0 -> 15 chars)'], None)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

__all__ = ["Gene", "crossover", "crossover_genes", "draw_crossover", "swap_example",
           "with_examples", "with_instructions"]

# (module, field): field is "instructions" or "examples", or None for the whole module.
Gene = tuple[str, str | None]


def with_examples(state: dict, module: str, examples: list[dict],
                  how: str = "resample") -> tuple[dict, list[str]]:
    """`state` with the few-shot examples of `module` replaced."""
    new = copy.deepcopy(state)
    before = len(new[module].get("examples") or [])
    new[module]["examples"] = copy.deepcopy(examples)
    return new, [f"{how} {module}.examples ({before} -> {len(examples)} demos)"]


def swap_example(state: dict, module: str, index: int, demo: dict) -> tuple[dict, list[str]]:
    """`state` with example `index` of `module` replaced by `demo` (appended if past the end)."""
    new = copy.deepcopy(state)
    examples = new[module].setdefault("examples", [])
    demo = {"inputs": copy.deepcopy(demo["inputs"]), "outputs": copy.deepcopy(demo["outputs"])}
    if index >= len(examples):
        examples.append(demo)
        return new, [f"perturb {module}.examples (added demo {len(examples) - 1})"]
    examples[index] = demo
    return new, [f"perturb {module}.examples (swapped demo {index})"]


def with_instructions(state: dict, module: str, text: str,
                      how: str = "reflect") -> tuple[dict, list[str]]:
    """`state` with the instructions of `module` set to `text`."""
    new = copy.deepcopy(state)
    before = len(new[module].get("instructions") or "")
    new[module]["instructions"] = text
    return new, [f"{how} {module}.instructions ({before} -> {len(text)} chars)"]


def crossover_genes(state_a: dict, state_b: dict) -> list[Gene]:
    """The genes two states can exchange, where they differ.

    With several modules a gene is a whole module (each module comes from one parent);
    with a single module, its instructions and its examples are the two genes.
    """
    modules = sorted(set(state_a) & set(state_b))
    if len(modules) > 1:
        return [(m, None) for m in modules if state_a[m] != state_b[m]]
    genes: list[Gene] = []
    for module in modules:
        for field in ("instructions", "examples"):
            if state_a[module].get(field) != state_b[module].get(field):
                genes.append((module, field))
    return genes


def crossover(state_a: dict, state_b: dict, from_b: Sequence[Gene],
              names: tuple[str, str] = ("a", "b")) -> tuple[dict, list[str]]:
    """`state_a` with the genes `from_b` taken from `state_b`."""
    new = copy.deepcopy(state_a)
    taken = []
    for module, field in from_b:
        if field is None:
            new[module] = copy.deepcopy(state_b[module])
            taken.append(module)
        else:
            new[module][field] = copy.deepcopy(state_b[module].get(field))
            taken.append(f"{module}.{field}")
    return new, [f"crossover {names[0]} x {names[1]} ({', '.join(taken)} <- {names[1]})"]


def draw_crossover(genes: Sequence[Gene], rng: np.random.Generator) -> list[Gene]:
    """A random non-empty, proper subset of `genes` to take from the second parent.

    Needs at least two genes (with one, a child would just copy a parent): else [].
    """
    if len(genes) < 2:
        return []
    mask = rng.random(len(genes)) < 0.5
    if mask.all() or not mask.any():
        flip = int(rng.integers(len(genes)))
        mask[flip] = not mask[flip]
    return [gene for gene, take in zip(genes, mask, strict=True) if take]
