"""Engines: where evaluations run. `LocalEngine` (asyncio, in-process); `RayEngine` (actors).

Ray is imported only inside `synaray.engines.ray`, lazily: `synaray.engines.RayEngine` (and
`synaray.RayEngine`) load it on first access, not at `import synaray`.

Example:
    >>> from synaray.engines import LocalEngine, RayEngine  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synaray.engines.engine import Engine, EngineState
from synaray.engines.local import LocalEngine
from synaray.errors import ConfigError

__all__ = ["Engine", "EngineState", "LocalEngine", "RayEngine", "get"]


def __getattr__(name: str) -> Any:
    if name == "RayEngine":  # imports Ray: only when asked for
        from synaray.engines.ray import RayEngine

        return RayEngine
    raise AttributeError(f"module 'synaray.engines' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"RayEngine"})


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


if TYPE_CHECKING:  # pragma: no cover
    from synaray.engines.ray import RayEngine
