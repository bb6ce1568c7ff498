"""Engines: where evaluations run. `LocalEngine` (asyncio, in-process); `RayEngine` (actors).

Ray is imported only inside `synaray.engines.ray`, lazily.
"""

from __future__ import annotations

from typing import Any

from synaray.engines.engine import Engine, EngineState
from synaray.engines.local import LocalEngine
from synaray.errors import ConfigError

__all__ = ["Engine", "EngineState", "LocalEngine", "get"]


def get(identifier: Any) -> Engine:
    """An engine from None or "local" (LocalEngine), "ray" (RayEngine) or an instance."""
    if identifier is None or identifier == "local":
        return LocalEngine()
    if identifier == "ray":
        from synaray.engines.ray import RayEngine

        return RayEngine()
    if isinstance(identifier, Engine):
        return identifier
    raise ConfigError(f"Invalid value for argument `engine`. Received: {identifier!r}. "
                      "Expected 'local', 'ray' or an Engine instance.")
