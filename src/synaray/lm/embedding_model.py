"""`EmbeddingModel`: text embeddings through litellm, cached per text."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from synaray.errors import ConfigError, LMError, LMOutputError
from synaray.lm._litellm import NO_SDK_RETRIES, import_litellm
from synaray.lm.base import ModelClient, check_positive, estimate_tokens
from synaray.lm.cache import cache_key
from synaray.lm.retry import call_with_retries

__all__ = ["EmbeddingModel"]

_CACHE_VERSION = 1


class EmbeddingModel(ModelClient):
    """An embedding model reached through litellm, with retries, a cache and accounting.

    Args:
        model: a litellm embedding model ("openai/text-embedding-3-small",
            "gemini/gemini-embedding-001", ...) or "local/minilm": all-MiniLM-L6-v2 run
            in-process with onnxruntime (384 dimensions, unit norm; needs the `local` extra).
        api_base: the endpoint, when not the provider's default.
        api_key: the key; never written to configs or reprs.
        api_key_env: the name of the environment variable holding the key (in configs).
        cache: True (the file `$SYNARAY_CACHE_DIR/lm_cache.sqlite`), False/None (off), or
            the path of a SQLite file. Each text is cached on its own.
        batch_size: texts per request.
        timeout: seconds before one request is abandoned (then retried).
        retries: retries after the first attempt, for 429, timeouts and 5xx.
        max_concurrency: requests in flight at once for this object, per event loop.
        backoff_base_s: first backoff delay in seconds, doubled at each retry.
        backoff_max_s: longest backoff delay in seconds.
        **litellm_kwargs: passed to `litellm.aembedding` (e.g. `dimensions`).

    Unlike `LanguageModel`, a failed embedding call raises its `synaray.errors.LMError`
    (after retries), since the Synalinks return shape has no room for an error; rewards
    that embed turn it into a scored failure. The failure is counted in `usage` first.

    Example:
        >>> import asyncio, synaray
        >>> em = synaray.EmbeddingModel("local/minilm", cache=False)
        >>> out = asyncio.run(em(["a cat", "a kitten"]))
        >>> len(out["embeddings"]), len(out["embeddings"][0])
        (2, 384)
    """

    def __init__(self, model: str, api_base: str | None = None, api_key: str | None = None,
                 cache: bool | str | None = True, batch_size: int = 64,
                 timeout: float = 60.0, retries: int = 4, max_concurrency: int = 8,
                 backoff_base_s: float = 1.0, backoff_max_s: float = 30.0,
                 api_key_env: str | None = None, **litellm_kwargs: Any) -> None:
        super().__init__(model, api_base=api_base, api_key=api_key, api_key_env=api_key_env,
                         timeout=timeout, retries=retries, cache=cache,
                         max_concurrency=max_concurrency, backoff_base_s=backoff_base_s,
                         backoff_max_s=backoff_max_s, **litellm_kwargs)
        check_positive("batch_size", batch_size, integer=True)
        if model.startswith("local/"):
            from synaray.lm.local.names import check_local_embedding_model

            check_local_embedding_model(model)
        self.batch_size = batch_size

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["batch_size"] = self.batch_size
        return config

    async def __call__(self, texts: list[str]) -> dict[str, list[list[float]]]:
        """Embed `texts`; returns `{"embeddings": [[float, ...], ...]}` in input order."""
        vectors = await self.embed(texts)
        return {"embeddings": vectors.tolist()}

    async def embed(self, texts: list[str] | str) -> np.ndarray:
        """Embed `texts`; returns a float array of shape (len(texts), dimension).

        Raises:
            ConfigError: `texts` is not a list of strings.
            LMError: the provider failed after retries (a subclass names how).
            MissingExtraError: "local/minilm" without the `local` extra.
        """
        texts = _check_texts(texts)
        start = time.perf_counter()
        self._prepare_provider()
        keys = [self._key(t) for t in texts]
        cache = self.response_cache
        found = await cache.aget_vectors(sorted(set(keys))) if cache is not None else {}
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        tally = {"requests": 0, "prompt_tokens": 0}
        try:
            fresh = await self._embed_missing(list(todo.items()), tally)
        except LMError as exc:
            self._account(ok=False, cached=False, requests=tally["requests"],
                          prompt_tokens=tally["prompt_tokens"], completion_tokens=0, cost=0.0,
                          latency_s=time.perf_counter() - start, error=str(exc),
                          error_type=type(exc).__name__)
            raise
        if cache is not None and fresh:
            await cache.aset_vectors(fresh)
        found.update(fresh)
        self._account(ok=True, cached=bool(texts) and not todo, requests=tally["requests"],
                      prompt_tokens=tally["prompt_tokens"], completion_tokens=0, cost=0.0,
                      latency_s=time.perf_counter() - start)
        if not texts:
            return np.zeros((0, 0), dtype=np.float64)
        return np.vstack([found[k] for k in keys])

    def _prepare_provider(self) -> None:
        if self.model.startswith("local/"):
            from synaray.lm.local.minilm import check_minilm_available, register_local_provider

            check_minilm_available()
            register_local_provider()

    def _key(self, text: str) -> str:
        return cache_key({"v": _CACHE_VERSION, "kind": "embedding", "model": self.model,
                          "api_base": self.api_base, "params": self._semantic_kwargs({}),
                          "text": text})

    async def _embed_missing(self, todo: list[tuple[str, str]],
                             tally: dict[str, int]) -> dict[str, np.ndarray]:
        batches = [todo[i:i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        tasks = [asyncio.ensure_future(self._embed_batch([t for _, t in batch], tally))
                 for batch in batches]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # one batch failed: stop the others before reporting
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        fresh: dict[str, np.ndarray] = {}
        for batch, vectors in zip(batches, results, strict=True):
            for (key, _), vector in zip(batch, vectors, strict=True):
                fresh[key] = vector
        return fresh

    async def _embed_batch(self, texts: list[str], tally: dict[str, int]) -> list[np.ndarray]:
        litellm = import_litellm()
        request: dict[str, Any] = {**self.litellm_kwargs, "model": self.model, "input": texts,
                                   "timeout": self.timeout, "num_retries": 0,
                                   "max_retries": NO_SDK_RETRIES}
        if self.api_base:
            request["api_base"] = self.api_base
        api_key = self._api_key()
        if api_key:
            request["api_key"] = api_key

        tokens = estimate_tokens(texts)

        async def attempt() -> Any:
            tally["requests"] += 1
            return await self._attempt(lambda: litellm.aembedding(**request), tokens)

        response = await call_with_retries(attempt, self.retry_policy)
        usage = getattr(response, "usage", None)
        tally["prompt_tokens"] += int(getattr(usage, "prompt_tokens", 0) or 0)
        return _vectors_of(response, len(texts), self.model)


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise ConfigError(f"Invalid value for argument `texts`. Received: {texts!r:.200}. "
                          "Expected a list of strings.")
    return list(texts)


def _vectors_of(response: Any, count: int, model: str) -> list[np.ndarray]:
    items = list(getattr(response, "data", None) or [])
    if len(items) != count:
        raise LMOutputError(f"{model}: asked for {count} embeddings, received {len(items)}.")
    items.sort(key=lambda item: _field(item, "index") or 0)
    return [np.asarray(_field(item, "embedding"), dtype=np.float64) for item in items]


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)
