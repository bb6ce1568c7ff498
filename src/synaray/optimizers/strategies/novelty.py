"""Dominated Novelty Search (DNS): prune a population by fitness *and* novelty.

DNS (Bahlous-Boldi et al., 2025, "Dominated Novelty Search") replaces a GA's truncation
with a competition score: for each candidate, the mean distance to its `k` nearest
*fitter* candidates (infinite when nobody is fitter). A candidate that is both worse than
others and close to them scores low and is pruned first; a worse candidate far from every
fitter one (it explores elsewhere) survives. Distances are between descriptors: embeddings
of the instructions (cosine distance) or, without an embedding model, token-Jaccard
distances of the instruction texts.

Contract (`Distance`): `distance(a, b)` is symmetric, >= 0, and 0 for equal descriptors.

Example:
    >>> texts = ["answer yes or no", "answer yes or no please", "count the objects"]
    >>> d = distance_matrix(texts, jaccard_distance)
    >>> dns_survivors(["a", "b", "c"], [0.9, 0.5, 0.4], d, k=1, size=2)
    ['a', 'c']
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from synaray.modules.prompts import DEFAULT_INSTRUCTIONS
from synaray.utils.tracing import Trace, trace_scope

__all__ = [
    "Distance",
    "cosine_distance",
    "descriptor",
    "distance_matrix",
    "dns_survivors",
    "dominated_novelty",
    "embed_texts",
    "jaccard_distance",
]

_TOKEN = re.compile(r"\w+")


class Distance(Protocol):
    def __call__(self, a: Any, b: Any) -> float:
        ...


def descriptor(state: dict) -> str:
    """The text a candidate is described by: its modules' instructions, in module order."""
    return "\n".join(state[m].get("instructions") or DEFAULT_INSTRUCTIONS for m in sorted(state))


def jaccard_distance(a: str, b: str) -> float:
    """1 - |A & B| / |A | B| over lower-cased word tokens (0.0 for two empty texts)."""
    ta, tb = set(_TOKEN.findall(a.lower())), set(_TOKEN.findall(b.lower()))
    union = ta | tb
    return 0.0 if not union else 1.0 - len(ta & tb) / len(union)


def cosine_distance(u: Sequence[float], v: Sequence[float]) -> float:
    """(1 - cos(u, v)) / 2, in [0, 1]; a zero vector is at distance 0.5 from anything."""
    a, b = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    cos = 0.0 if norm == 0.0 else float(np.clip(a @ b / norm, -1.0, 1.0))
    return (1.0 - cos) / 2.0


def distance_matrix(items: Sequence[Any], distance: Distance) -> np.ndarray:
    """The symmetric matrix of pairwise distances."""
    n = len(items)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = distance(items[i], items[j])
    return matrix


def dominated_novelty(fitness: Sequence[float], distances: np.ndarray, k: int) -> list[float]:
    """Each candidate's competition score: mean distance to its k nearest fitter ones."""
    scores = []
    for i, own in enumerate(fitness):
        fitter = [j for j, other in enumerate(fitness) if other > own]
        if not fitter:
            scores.append(math.inf)
            continue
        nearest = sorted(float(distances[i, j]) for j in fitter)[:k]
        scores.append(float(np.mean(nearest)))
    return scores


def dns_survivors(ids: Sequence[str], fitness: Sequence[float], distances: np.ndarray, k: int,
                  size: int) -> list[str]:
    """The `size` candidates with the best competition scores (ties: fitter, then earlier)."""
    scores = dominated_novelty(fitness, distances, k)
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], -fitness[i], i))
    return [ids[i] for i in order[:size]]


async def embed_texts(embedding_model: Any,
                      texts: list[str]) -> tuple[list[list[float]] | None, str | None, Trace]:
    """Embed `texts` in one call: `(vectors or None, error or None, trace of the call)`.

    The model is called as `await embedding_model(texts)` and may answer a dict or an
    object with `embeddings` (and `ok`); anything else is an error, never an exception.
    """
    with trace_scope() as trace:
        try:
            result = await embedding_model(texts)
        except Exception as exc:  # a failed descriptor falls back to Jaccard; it is counted
            return None, f"{type(exc).__name__}: {exc}", trace
    if getattr(result, "ok", True) is False:
        return None, str(getattr(result, "error", "embedding call failed")), trace
    vectors = (result.get("embeddings") if isinstance(result, dict)
               else getattr(result, "embeddings", None))
    if vectors is None or len(vectors) != len(texts):
        return None, "the embedding model returned the wrong number of vectors", trace
    return [[float(x) for x in v] for v in vectors], None, trace
