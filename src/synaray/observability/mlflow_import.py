"""Importing MLflow on demand: `require_mlflow` and the default experiment name.

Shared by the observability switch (`config.py`) and the `MlflowLogger` callback, which
`config.py` builds: they both import this module rather than each other.
"""

from __future__ import annotations

from typing import Any

from synaray.errors import MissingExtraError

__all__ = ["DEFAULT_EXPERIMENT", "INSTALL_HINT", "require_mlflow"]

DEFAULT_EXPERIMENT = "synaray"
INSTALL_HINT = "pip install 'synaray[mlflow]'"


def require_mlflow() -> Any:
    """Import and return `mlflow`, or raise `MissingExtraError` naming the extra.

    Example:
        >>> require_mlflow().__name__  # doctest: +SKIP
        'mlflow'
    """
    try:
        import mlflow
    except ImportError as exc:
        raise MissingExtraError(
            f"Observability needs MLflow, which is not installed ({exc}). Install it with: "
            f"{INSTALL_HINT}") from exc
    return mlflow
