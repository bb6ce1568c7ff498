"""A run's name, where runs live, and the one "may this run start here?" check.

- `new_run_name(program_name)`: `<program>-<YYYYmmdd-HHMMSS>-<6 hex>`, the name of a run
  given none (RayEngine, `synaray fit`).
- `resolve_storage(storage)`: the storage as an absolute path or a URI (default
  `./synaray_runs`).
- `claim_run(store, resume=...)`: take the run's lease (one writer per run name,
  `synaray.runs.lease`) and check that a new run finds no earlier one under its name, and
  that a resumed run finds something to resume. Used by `RayEngine.host_optimizer` and by
  `synaray fit` (`synaray.config.runner`).
- `open_existing_run(storage, name)`: the `RunStorage` of a run that exists, for reading.

Example:
    >>> new_run_name("qa", now=0.0)[:2]
    'qa'
    >>> import tempfile
    >>> from synaray.runs.storage import RunStorage
    >>> store = RunStorage(tempfile.mkdtemp(), "demo")
    >>> lease = claim_run(store, resume=False)
    >>> lease.release()
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

from synaray.errors import ConfigError
from synaray.runs.files import RUN_CONFIG
from synaray.runs.lease import RunLease, held_lease
from synaray.runs.storage import RunStorage, redact_uri

__all__ = ["DEFAULT_STORAGE", "claim_run", "new_run_name", "open_existing_run",
           "resolve_storage"]

DEFAULT_STORAGE = "synaray_runs"  # relative to the working directory


def new_run_name(program_name: str, now: float | None = None) -> str:
    """`<program_name>-<local time stamp>-<6 random hex digits>`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{program_name}-{stamp}-{uuid.uuid4().hex[:6]}"


def resolve_storage(storage: str | None) -> tuple[str, bool]:
    """(storage as an absolute path or a URI, whether it was given as a relative path)."""
    value = storage or DEFAULT_STORAGE
    if "://" in value:
        return value, False
    expanded = os.path.expanduser(value)
    return os.path.abspath(expanded), not os.path.isabs(expanded)


def open_existing_run(storage: str | None, run_name: str) -> RunStorage:
    """The `RunStorage` of a run that exists (nothing is created for a wrong name).

    Raises:
        ConfigError: no folder `run_name` in `storage`.
    """
    import pyarrow.fs as pafs

    storage, _ = resolve_storage(storage)
    fs, base = (pafs.FileSystem.from_uri(storage) if "://" in storage
                else (pafs.LocalFileSystem(), storage))
    if fs.get_file_info(f"{base.rstrip('/')}/{run_name}").type != pafs.FileType.Directory:
        raise ConfigError(f"No run {run_name!r} in {redact_uri(storage)}.")
    return RunStorage(storage, run_name)


def claim_run(store: RunStorage, *, resume: bool, live: bool = False,
              take_lease: bool = True, use_held: bool = False, check_resume: bool = True,
              holder_gone: Callable[[dict], bool] | None = None,
              resume_hint: str | None = None) -> RunLease | None:
    """Take the run name for this process and check it may start (or resume) here.

    A run "exists" when its folder holds a checkpoint, or when `live` (the caller found the
    run's optimizer actor alive), or when it holds a `run_config.json` that this process
    did not write (a `synaray fit` in this process takes the lease, then writes its config,
    then fits: its engine's check, with `use_held`, does not count that config). The lease
    is taken before the check, so two runs starting with one name cannot both pass it; on
    a failed check a lease taken here is released.

    Args:
        store: the run's `RunStorage`.
        resume: continue the run (else it must not exist).
        live: the run is alive elsewhere (its optimizer actor): it exists, and its holder
            keeps the lease (none is taken).
        take_lease: False: check only (the lease is taken by whoever continues the run).
        use_held: use the lease this process already holds on the run, if any (an engine
            inside `synaray fit`, which took it before writing the run's config); else the
            lease is always taken here, so two runs of one name in one process also
            exclude each other.
        check_resume: False: a resume with nothing stored is not an error here (its
            engine decides).
        holder_gone: see `RunLease.acquire`.
        resume_hint: how to continue an existing run, for the error message (default: the
            Python API, `resume=True`).

    Returns:
        The lease (heartbeat not started), or None when none was taken.

    Raises:
        RunLockedError: a live run holds the name.
        ConfigError: the run exists and `resume` is false, or there is nothing to resume.
    """
    lease = held = held_lease(store) if use_held else None
    if not take_lease or live:
        lease = None
    elif lease is None:
        lease = RunLease.acquire(store, holder_gone=holder_gone)
    try:
        where = redact_uri(store.storage)
        stored = store.has_checkpoint()
        foreign_config = held is None and store.exists(RUN_CONFIG)
        if not resume and (stored or live or foreign_config):
            hint = resume_hint or "pass resume=True to continue it"
            raise ConfigError(f"Run {store.run_name!r} already exists in {where}; {hint}, or "
                              "choose another run_name.")
        if resume and check_resume and not stored and not live:
            raise ConfigError(f"Nothing to resume: no checkpoint of run {store.run_name!r} "
                              f"in {where}.")
    except BaseException:
        if lease is not None:
            lease.release()
        raise
    return lease
