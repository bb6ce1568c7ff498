"""RayEngine: evaluator actors, a checkpointed optimizer actor, cluster-wide rate limits.

The only place (with the CLI) that imports Ray.
"""

from synaray.engines.ray.engine import RayEngine

__all__ = ["RayEngine"]
