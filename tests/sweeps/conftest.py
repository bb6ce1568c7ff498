from helpers.ray_cluster import ray_cluster  # noqa: F401  (session fixture)
