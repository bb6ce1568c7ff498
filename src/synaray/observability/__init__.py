"""Observability: MLflow tracking of fits, LM call spans, live run status.

- `enable_observability(tracking_uri, experiment_name)`: every later `fit` becomes an MLflow
  run (params, per-generation reward and LM usage, validation reward, the best program as an
  artifact) and every `LanguageModel` call of this process a span, when MLflow tracing is
  available. Needs the `mlflow` extra: `pip install 'synaray[mlflow]'`.
- `MlflowLogger`: the callback behind it, usable on its own in `fit(callbacks=[...])`.
- `read_status` / `format_status`: the live status of a run in run storage, as
  `synaray status` prints it.

Importing this package imports neither MLflow nor Ray.

Example:
    >>> import synaray
    >>> synaray.enable_observability(tracking_uri="http://127.0.0.1:5000",
    ...                              experiment_name="demo")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from synaray.observability.config import (
    ObservabilityConfig,
    disable_observability,
    enable_observability,
    get_observability,
)

__all__ = [
    "MlflowLogger",
    "ObservabilityConfig",
    "RunStatus",
    "disable_observability",
    "enable_observability",
    "format_status",
    "get_observability",
    "read_status",
]

_LAZY = {
    "MlflowLogger": "synaray.observability.mlflow_logger",
    "RunStatus": "synaray.observability.status",
    "read_status": "synaray.observability.status",
    "format_status": "synaray.observability.status",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synaray.observability' has no attribute {name!r}")
