"""Test doubles for the models and programs rewards receive (no server, deterministic).

Registered with the synaray registry so configs that hold them reload by name whatever
module path pytest imported this file under.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import LMTimeout
from synaray.rewards.common import tokenize
from synaray.saving import register_synaray_serializable

__all__ = ["FakeEmbeddingModel", "FakeJudgeLM", "FakeJudgeProgram", "FakeResult"]


@register_synaray_serializable(package="synaray_tests")
class FakeEmbeddingModel:
    """Bag-of-words embeddings: each SQuAD token adds 1 to a hashed coordinate.

    Stable across processes (md5, not `hash`), so similar texts get similar vectors.
    Records each request in `requests`.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.requests: list[list[str]] = []

    def embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for token in tokenize(text) or ["<empty>"]:
            digest = hashlib.md5(token.encode("utf-8")).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dim] += 1.0
        return vector

    async def __call__(self, texts: list[str]) -> dict[str, Any]:
        self.requests.append(list(texts))
        await asyncio.sleep(0)
        return {"embeddings": [self.embed(t) for t in texts]}

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FakeEmbeddingModel:
        return cls(**config)


@dataclass
class FakeResult:
    """The shape of `synaray.lm.LMResult` that rewards read."""

    ok: bool
    json: dict | None = None
    text: str | None = None
    error: str | None = None


@register_synaray_serializable(package="synaray_tests")
class FakeJudgeLM:
    """A judge that always answers `score` (mode "ok"), or fails in the way `mode` says.

    Modes: "ok", "error_result" (ok=False), "raise" (an LMTimeout), "no_score" (JSON
    without a score), "text_score" (the score as a string).
    """

    def __init__(self, score: float | None = 1.0, mode: str = "ok") -> None:
        self.score = score
        self.mode = mode
        self.calls: list[tuple[list[dict], dict | None]] = []

    async def __call__(self, messages: list[dict], schema: dict | None = None) -> FakeResult:
        self.calls.append((messages, schema))
        await asyncio.sleep(0)
        if self.mode == "raise":
            raise LMTimeout("fake timeout")
        if self.mode == "error_result":
            return FakeResult(ok=False, error="fake failure")
        if self.mode == "no_score":
            return FakeResult(ok=True, json={"critique": "hmm"})
        score: Any = str(self.score) if self.mode == "text_score" else self.score
        return FakeResult(ok=True, json={"critique": "fine", "score": score})

    def get_config(self) -> dict[str, Any]:
        return {"score": self.score, "mode": self.mode}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FakeJudgeLM:
        return cls(**config)


@register_synaray_serializable(package="synaray_tests")
class FakeJudgeProgram:
    """A judge program that outputs `{field: value}` (None as value: the program fails)."""

    def __init__(self, value: float | None = 1.0, field: str = "reward",
                 two_inputs: bool = False) -> None:
        self.value = value
        self.field = field
        self.two_inputs = two_inputs
        self.inputs: list[Any] = []

    @property
    def input_schemas(self) -> list[dict]:
        return [{"type": "object"}] * (2 if self.two_inputs else 1)

    async def __call__(self, inputs: Any) -> JsonDataModel | None:
        self.inputs.append(inputs)
        if self.value is None:
            return None
        return JsonDataModel(json={self.field: self.value, "critique": "ok"})

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value, "field": self.field, "two_inputs": self.two_inputs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FakeJudgeProgram:
        return cls(**config)
