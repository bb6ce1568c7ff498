"""The one way to build the cluster-wide rate limiter (RayEngine and bulk evaluation)."""

from __future__ import annotations

import pytest

from synaray.engines.ray.rate_limiter import rate_limiter_actor

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


def test_one_builder_for_named_and_unnamed_rate_limiters():
    import ray

    assert rate_limiter_actor(None) is None and rate_limiter_actor({}) is None
    limits = {"openai/gpt-4o-mini": {"requests_per_minute": 60}}
    named = rate_limiter_actor(limits, name="synaray-ratelimit-test-run")
    again = rate_limiter_actor(limits, name="synaray-ratelimit-test-run")
    assert named._actor_id == again._actor_id  # one per run name, shared
    unnamed = rate_limiter_actor(limits)
    assert unnamed._actor_id != named._actor_id
    for actor in (named, unnamed):  # both hold the limits given
        assert set(ray.get(actor.stats.remote())) == {"openai/gpt-4o-mini"}
        assert ray.get(actor.reserve.remote("openai/gpt-4o-mini", 0)) >= 0.0
    # the limiter survives a crash: restarted, its calls retried
    ray.kill(unnamed, no_restart=False)
    assert set(ray.get(unnamed.stats.remote(), timeout=120)) == {"openai/gpt-4o-mini"}
    for actor in (named, unnamed):
        ray.kill(actor, no_restart=True)
