"""RayEngine: evaluator actors, a checkpointed optimizer actor, cluster-wide rate limits.

The only place (with the CLI and the functions of `synaray.runs.ray_connect`) that imports
Ray. `RayEngine` is loaded on first use, so the package imports
without Ray; bulk I/O is `synaray.engines.bulk_io`, run storage is `synaray.runs.storage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["RayEngine"]


def __getattr__(name: str) -> Any:
    if name == "RayEngine":
        from synaray.engines.ray.engine import RayEngine

        return RayEngine
    raise AttributeError(f"module 'synaray.engines.ray' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from synaray.engines.ray.engine import RayEngine
