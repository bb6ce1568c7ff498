"""What a command holds open while it runs: the local model server and the Ray connection.

- `local_model_session`: when the program uses the bundled local model and no server is
  reachable, start one (recorded for this machine's processes) for the duration of the
  command. Its address goes into `SYNARAY_LOCAL_LM_API_BASE` only when `export` is true
  (in-process runs and a Ray cluster this command starts): a cluster that was joined keeps
  its own setting, so each node starts or reuses its own server.
- `ray_session`: connect to Ray once for the whole command (fit, then test evaluation),
  through `synaray.runs.ray_connect`: join `address` (or the job's cluster under
  `ray job submit`), or start a cluster on this machine whose workers get this process's
  import path and `SYNARAY_*` settings.
- `lease_session`: hold the run's lease (`synaray.runs.lease`: one writer per
  run name) while the command writes the run's folder, renewed in the background; released
  at the end unless the run was handed to its Ray optimizer actor, which then holds it.

Example:
    >>> with ray_session(None, say=print):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["lease_session", "local_model_session", "ray_session"]

ENV_API_BASE = "SYNARAY_LOCAL_LM_API_BASE"


@contextlib.contextmanager
def _exported(api_base: str | None) -> Iterator[None]:
    if api_base is None:
        yield
        return
    previous = os.environ.get(ENV_API_BASE)
    os.environ[ENV_API_BASE] = api_base
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_API_BASE, None)
        else:
            os.environ[ENV_API_BASE] = previous


@contextlib.contextmanager
def local_model_session(needed: bool, export: bool,
                        say: Callable[[str], None]) -> Iterator[str | None]:
    """Yield the local server's api_base (None when the local model is not used)."""
    if not needed:
        yield None
        return
    from synaray.lm.local.server import find_local_lm_server, local_lm_server

    api_base = find_local_lm_server()
    if api_base is not None:
        say(f"local model: using the server at {api_base}")
        with _exported(api_base if export else None):
            yield api_base
        return
    say("local model: starting the SmolLM2 server for this command...")
    with local_lm_server(record=True) as server:
        say(f"local model: {server.model} at {server.api_base}")
        with _exported(server.api_base if export else None):
            yield server.api_base


@contextlib.contextmanager
def lease_session(lease: Any) -> Iterator[Any]:
    """Renew `lease` (a `RunLease`, or None: nothing to hold) inside the block; release it
    after, also on an error."""
    if lease is None:
        yield None
        return
    lease.start_heartbeat()
    try:
        yield lease
    finally:
        lease.release()


@contextlib.contextmanager
def ray_session(address: str | None, say: Callable[[str], None]) -> Iterator[None]:
    """Connected to Ray inside the block (`synaray.runs.ray_connect.connect`: the cluster
    at `address`, the job's under `ray job submit`, else a new local one); disconnects (and
    stops a cluster it started) at the end. A connection that was open already is kept."""
    from synaray.runs.ray_connect import connected

    with connected(address, say=say):
        yield
