"""Finding a run's files for reading (`synaray status`, `synaray report`), without Ray.

A run is named either by its name under a storage (`RUN --storage URI`, the layout RayEngine
writes: `<storage>/<run>/status.json`, ...) or by the path of its folder. Reading never
creates anything: a missing run is an error that lists the runs the storage does hold.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow.fs as pafs

from synaray.errors import CheckpointError
from synaray.runs.files import RUN_MARKERS as RUN_FILES
from synaray.runs.naming import DEFAULT_STORAGE
from synaray.runs.storage import RunStorage
from synaray.runs.storage import redact_uri as _redact

__all__ = ["DEFAULT_STORAGE", "RUN_FILES", "display_location", "open_run"]


def display_location(store: Any) -> str:
    """Where a run lives, for messages and reports (credentials in the URI hidden)."""
    return _redact(store.uri(""))


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError):
        return pafs.LocalFileSystem(), os.path.abspath(uri)


def _is_run_folder(fs: pafs.FileSystem, path: str) -> bool:
    return any(fs.get_file_info(f"{path.rstrip('/')}/{name}").type == pafs.FileType.File
               for name in RUN_FILES)


def _runs_in(fs: pafs.FileSystem, base: str) -> list[str]:
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except OSError:
        return []
    return sorted(i.base_name for i in infos
                  if i.type == pafs.FileType.Directory and _is_run_folder(fs, i.path))


def open_run(run: str, storage: str | None = None) -> Any:
    """The `RunStorage` of an existing run, for reading.

    Args:
        run: the run name under `storage`, or (with `storage` None) the path of a run folder.
        storage: a local folder or pyarrow URI (`s3://...`); None: `./synaray_runs` (as
            RayEngine and `synaray fit`), unless `run` is itself a run folder.

    Raises:
        CheckpointError: no such run (the message lists the runs found in the storage).
    """
    if storage is None:
        fs, path = _filesystem(run)
        if "/" in run.rstrip("/") or os.path.isdir(run):
            if _is_run_folder(fs, path):
                parent, name = os.path.split(path.rstrip("/"))
                return RunStorage(parent if "://" not in run else run.rsplit("/", 1)[0], name)
        storage = DEFAULT_STORAGE
    fs, base = _filesystem(storage)
    root = f"{base.rstrip('/')}/{run}"
    if not _is_run_folder(fs, root):
        runs = _runs_in(fs, base)
        found = f"runs there: {', '.join(runs)}" if runs else "no runs there"
        raise CheckpointError(f"No run {run!r} in storage {_redact(storage)} ({found}). Pass "
                              "the run name and --storage, or the path of the run's folder.")
    return RunStorage(storage, run)
