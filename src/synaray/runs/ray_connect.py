"""Connecting to Ray, once, the same way for fit, evaluate, sweeps and bulk evaluation.

`connect(address, runtime_env, env_vars)` chooses the cluster:

- Ray already initialized in this process: used as it is (nothing to stop later);
- no address and no `RAY_ADDRESS`: a NEW local cluster (`address="local"`: a bare
  `ray.init()` would join any cluster found running on this machine, `ray start` or another
  program's), its workers given `worker_runtime_env()`;
- no address but `RAY_ADDRESS` set (inside `ray job submit`): the job's cluster;
- an address ("auto", "host:port", "ray://host:port"): that cluster.

Runtime env rules (Ray writes the runtime env, values included, to its logs):

- a cluster this process starts is made of its children, which inherit its environment
  (API keys included) without it passing through Ray: the runtime env adds only the import
  path, synaray's own non-secret settings (`SETTINGS_VARS`) and the variables the user
  named in `env_vars` (whose values then do reach Ray's logs);
- a joined cluster keeps its own environment: only a `runtime_env` given by the user and
  the named `env_vars` are sent;
- no key is ever put in a runtime env by synaray: the keys of a program's models reach the
  actors in memory with each call (`synaray.lm.keys`).

`actor_runtime_env` gives the runtime env of one engine's actors when Ray was initialized
by someone else. Ray is imported inside the functions only: importing this module does not
import Ray. (The cluster-wide rate limiter is built by
`synaray.engines.ray.rate_limiter.rate_limiter_actor`.)

Example:
    >>> started = connect()  # doctest: +SKIP
    >>> sorted(worker_runtime_env())
    ['env_vars']
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["NAMESPACE", "SETTINGS_VARS", "actor_runtime_env", "cluster_address", "connect",
           "connected", "joins_cluster", "worker_runtime_env"]

NAMESPACE = "synaray"

#: synaray's own settings (never secrets) that a cluster this process starts gets through
#: the runtime env, so a value changed after the cluster started still reaches new actors.
#: Nothing else is copied: Ray writes the runtime env, values included, to its logs.
SETTINGS_VARS = ("SYNARAY_CACHE_DIR", "SYNARAY_GC_FREEZE", "SYNARAY_LOCAL_LM_API_BASE",
                 "SYNARAY_LOCAL_LM_THREADS", "LITELLM_LOCAL_MODEL_COST_MAP")


def cluster_address() -> str | None:
    """The address of the Ray cluster this process is connected to, or None. Never imports
    Ray: a process that has not imported it is connected to no cluster.

    Example:
        >>> cluster_address() is None or isinstance(cluster_address(), str)
        True
    """
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            return str(ray.get_runtime_context().gcs_address)
    except Exception:  # a Ray that is shutting down
        return None
    return None


def worker_runtime_env(env_vars: Sequence[str] = ()) -> dict:
    """For a cluster this process starts: workers see this process's import path.

    The cluster's processes are children of this one and inherit its environment (keys
    included) without it passing through Ray; the runtime env adds only the import path,
    synaray's non-secret settings (`SETTINGS_VARS`) and the variables named in `env_vars`
    (whose values then do reach Ray's logs).
    """
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    env.update({k: os.environ[k] for k in (*SETTINGS_VARS, *env_vars) if k in os.environ})
    return {"env_vars": env}


def _named_env(env_vars: Sequence[str]) -> dict[str, str]:
    return {name: os.environ[name] for name in env_vars if name in os.environ}


def joins_cluster(address: str | None) -> bool:
    """Whether Ray work joins a cluster that this process does not start."""
    if address is not None or os.environ.get("RAY_ADDRESS"):
        return True
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency
        return False
    return ray.is_initialized()


def connect(address: str | None = None, runtime_env: dict | None = None,
            env_vars: Sequence[str] = (), *, log_to_driver: bool = True) -> bool:
    """Connect this process to Ray (see the module docstring for which cluster).

    Args:
        address: None (a new local cluster, or the job's under `ray job submit`), "auto",
            "host:port" or "ray://host:port".
        runtime_env: the job's runtime env (a local cluster gets `worker_runtime_env()`
            when None).
        env_vars: names of this process's variables to add to the runtime env.
        log_to_driver: print the workers' output here.

    Returns:
        True when this call connected (the caller shuts Ray down when done), False when
        Ray was already initialized.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": log_to_driver}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs.update(address="local", include_dashboard=False,
                      runtime_env=runtime_env or worker_runtime_env())
    else:  # inside `ray job submit` (RAY_ADDRESS), or a given address
        if address is not None:
            kwargs["address"] = address
        if runtime_env:
            kwargs["runtime_env"] = runtime_env
    if env_vars:
        env = kwargs.get("runtime_env") or {}
        kwargs["runtime_env"] = {**env, "env_vars": {**(env.get("env_vars") or {}),
                                                     **_named_env(env_vars)}}
    ray.init(**kwargs)
    return True


@contextlib.contextmanager
def connected(address: str | None = None, *, runtime_env: dict | None = None,
              env_vars: Sequence[str] = (), say: Callable[[str], None] | None = None
              ) -> Iterator[bool]:
    """`connect` for the duration of a block; yields whether it connected. Ray is shut down
    at the end (stopping a cluster it started) only if this block connected."""
    import ray

    joining = joins_cluster(address)
    started = connect(address, runtime_env, env_vars)
    if started and say is not None:
        cpus = f"{ray.cluster_resources().get('CPU', 0):g} CPUs"
        if joining:
            say(f"ray: joined the cluster at "
                f"{address or os.environ.get('RAY_ADDRESS', 'auto')} ({cpus})")
        else:
            say(f"ray: started a local cluster ({cpus})")
    try:
        yield started
    finally:
        if started:
            ray.shutdown()


def actor_runtime_env(runtime_env: dict | None, env_vars: Sequence[str],
                      started: bool) -> dict | None:
    """The runtime env of an engine's actors: None (the job's) unless Ray was initialized
    by someone else (`started` false) and the engine was given one (or `env_vars`), which
    is then merged over the job's."""
    import ray

    if (not runtime_env and not env_vars) or started:
        return None
    own = runtime_env or {}
    job = dict(ray.get_runtime_context().runtime_env or {})
    env = {**(job.get("env_vars") or {}), **(own.get("env_vars") or {}),
           **_named_env(env_vars)}
    return {**job, **own, "env_vars": env}
