"""`CosineSimilarity`: embedding similarity of each field, mapped to [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import LMError, LMOutputError
from synaray.rewards.common import flatten_fields, leaf_text, mean_of
from synaray.rewards.reward import Reward
from synaray.saving import deserialize_object, serialize_object

__all__ = ["DEFAULT_EMBEDDING_MODEL", "CosineSimilarity", "cosine"]

DEFAULT_EMBEDDING_MODEL = "local/minilm"


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two vectors, clipped to [-1, 1]; 0.0 when either has zero norm.

    Example:
        >>> cosine([1.0, 0.0], [0.0, 2.0]), cosine([1.0, 1.0], [2.0, 2.0])
        (0.0, 1.0)
    """
    if len(a) != len(b):
        raise LMOutputError(f"Embeddings of different sizes ({len(a)} and {len(b)}) cannot be "
                            "compared.")
    norm = math.sqrt(math.fsum(x * x for x in a) * math.fsum(y * y for y in b))
    if norm == 0.0:
        return 0.0
    return max(-1.0, min(1.0, math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm))


def _embeddings_of(result: Any, expected: int) -> list[list[float]]:
    embeddings = (result.get("embeddings") if isinstance(result, dict)
                  else getattr(result, "embeddings", None))
    if embeddings is None or len(embeddings) != expected:
        got = "none" if embeddings is None else len(embeddings)
        raise LMOutputError(f"The embedding model returned {got} embeddings for {expected} "
                            "texts.")
    return [[float(x) for x in vector] for vector in embeddings]


class CosineSimilarity(Reward):
    """Embedding similarity of the prediction and the ground truth, field by field.

    For each field (leaf path) of the masked `y_true`, the texts of both sides are embedded
    and their cosine mapped to [0, 1] as `(cos + 1) / 2`; the reward is the mean over the
    fields. A field missing from the prediction scores 0.0, and a field whose two texts are
    identical scores exactly 1.0 without being embedded. All the texts of one sample are
    embedded in a single request, so a sample's value never depends on the other samples.
    An embedding call that fails (a `synaray.errors.LMError`, after the model's retries, or
    the wrong number of vectors) scores the sample 0.0 and is counted in
    `failed_embeddings`.

    Args:
        embedding_model: called as `await embedding_model(texts)` and returning
            `{"embeddings": [[float, ...], ...]}`, one vector per text (for example
            `synaray.EmbeddingModel("local/minilm")`). None builds that local MiniLM model
            on first use (`synaray.lm` is imported only then).
        name: defaults to "cosine_similarity".
        reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.

    `get_config` includes the serialized embedding model (Synalinks leaves it out).

    Example:
        ```python
        reward = synaray.rewards.CosineSimilarity(
            embedding_model=synaray.EmbeddingModel("local/minilm"), in_mask=["answer"])
        await reward({"answer": "Paris"}, {"answer": "It is Paris", "thinking": "..."})
        ```
    """

    def __init__(self, embedding_model: Any = None, name: str | None = None,
                 reduction: str | None = "mean", in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.embedding_model = embedding_model
        self.failed_embeddings = 0
        self._default_model: Any = None

    def _model(self) -> Any:
        if self.embedding_model is not None:
            return self.embedding_model
        if self._default_model is None:
            from synaray.lm import EmbeddingModel  # imported on first use: rewards stay light

            self._default_model = EmbeddingModel(DEFAULT_EMBEDDING_MODEL)
        return self._default_model

    async def call(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> float:
        true_fields = flatten_fields(y_true.get_json())
        pred_fields = flatten_fields(y_pred.get_json())
        if not true_fields:
            return 0.0 if pred_fields else 1.0
        scores: dict[str, float] = {}
        to_embed: list[str] = []
        for path, value in true_fields.items():
            if path not in pred_fields:
                scores[path] = 0.0
                continue
            t, p = leaf_text(value), leaf_text(pred_fields[path])
            if t == p:
                scores[path] = 1.0
            else:
                to_embed.append(path)
        if to_embed:
            texts = ([leaf_text(true_fields[p]) for p in to_embed]
                     + [leaf_text(pred_fields[p]) for p in to_embed])
            try:
                vectors = _embeddings_of(await self._model()(texts), len(texts))
            except LMError:  # a failed embedding call is a scored failure, counted
                self.failed_embeddings += 1
                return 0.0
            n = len(to_embed)
            for i, path in enumerate(to_embed):
                scores[path] = (cosine(vectors[i], vectors[n + i]) + 1.0) / 2.0
        return mean_of([scores[path] for path in true_fields])

    def reset_counters(self) -> None:
        super().reset_counters()
        self.failed_embeddings = 0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "embedding_model": serialize_object(self.embedding_model)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CosineSimilarity:
        config = dict(config)
        model = deserialize_object(config.pop("embedding_model", None))
        return cls(embedding_model=model, **config)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_default_model"] = None  # rebuilt on first use where it is unpickled
        return state
