"""synaray: optimize LM programs against a reward, on one machine or a Ray cluster.

`import synaray as synalinks` runs Synalinks-style code. Importing synaray is fast: Ray and
litellm are imported only when a model is called or an engine is started. Subpackages and
the classes below are loaded on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# litellm downloads a price file at import unless told not to; do it before anyone imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from synaray import errors
from synaray.version import __version__

_LAZY_ATTRS = {
    "DataModel": "synaray.data",
    "Field": "synaray.data",
    "JsonDataModel": "synaray.data",
    "LanguageModel": "synaray.lm",
    "EmbeddingModel": "synaray.lm",
    "Module": "synaray.modules",
    "Input": "synaray.modules",
    "Generator": "synaray.modules",
    "ChainOfThought": "synaray.modules",
    "Program": "synaray.programs",
    "Sequential": "synaray.programs",
    "LocalEngine": "synaray.engines",
    "RayEngine": "synaray.engines",  # imports Ray on first access only
    "enable_observability": "synaray.observability",
}
_LAZY_MODULES = ("callbacks", "cli", "data", "datasets", "engines", "lm", "metrics", "modules",
                 "observability", "optimizers", "programs", "rewards", "trainers", "utils")

__all__ = [
    "ChainOfThought",
    "DataModel",
    "EmbeddingModel",
    "Field",
    "Generator",
    "Input",
    "JsonDataModel",
    "LanguageModel",
    "LocalEngine",
    "Module",
    "Program",
    "RayEngine",
    "Sequential",
    "__version__",
    "enable_observability",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"synaray.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'synaray' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRS) | set(_LAZY_MODULES))


if TYPE_CHECKING:  # pragma: no cover
    from synaray.data import DataModel, Field, JsonDataModel
    from synaray.engines import LocalEngine, RayEngine
    from synaray.lm import EmbeddingModel, LanguageModel
    from synaray.modules import ChainOfThought, Generator, Input, Module
    from synaray.programs import Program, Sequential
