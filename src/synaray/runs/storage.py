"""Where a run keeps its checkpoints: a local folder or any pyarrow filesystem URI (s3://...).

Layout of `<storage>/<run_name>/`::

    manifest.json          written last: run name, step, files, time (readers trust it)
    optimizer_state.json   the optimizer's whole state (score table, RNG, budget...)
    best_program.json      a normal saved program (Program.load reads it)
    status.json            a small live status (generation, best reward, LM calls, rate)
    data/train.parquet     the run's data, so a restarted optimizer needs no driver
    data/val.parquet
    lease/<n>.json         the live run's lease: one writer per run name
                           (`synaray.runs.lease`)

(The names are constants of `synaray.runs.files`.) This module knows nothing of leases:
`synaray.runs.lease` builds on it, never the other way round.

Every file is written to a uniquely named temporary path and then moved into place; on a
local disk the move is an atomic rename, on object stores the final PUT is atomic. The
manifest goes last, so a reader never sees a half-written checkpoint.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from synaray.errors import CheckpointError
from synaray.runs.files import MANIFEST, OPTIMIZER_STATE

__all__ = ["RunStorage", "redact_uri"]


def redact_uri(uri: str) -> str:
    """A URI with any `user:password@` part replaced by `***@`."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@?]*@", r"\1***@", uri)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, ValueError):
        # a plain relative or absolute local path
        import os

        return pafs.LocalFileSystem(), os.path.abspath(uri)


class RunStorage:
    """Read and write one run's files under `<storage>/<run_name>`.

    Example:
        >>> import tempfile
        >>> store = RunStorage(tempfile.mkdtemp(), "demo")
        >>> store.write_json("status.json", {"generation": 1})
        >>> store.read_json("status.json")
        {'generation': 1}
    """

    def __init__(self, storage: str, run_name: str) -> None:
        self.storage = str(storage)
        self.run_name = run_name
        self.fs, base = _filesystem(self.storage)
        self.root = f"{base.rstrip('/')}/{run_name}"
        self.fs.create_dir(self.root, recursive=True)
        self.lease: Any = None  # the `RunLease` this process holds on the run, if any

    def uri(self, name: str) -> str:
        """Where `name` lives, as a URI `pyarrow.fs.FileSystem.from_uri` (and so
        `Program.load`) accepts: `s3://bucket/prefix/run/name?endpoint_override=...`."""
        if "://" in self.storage:
            base, sep, query = self.storage.partition("?")
            return f"{base.rstrip('/')}/{self.run_name}/{name}{sep}{query}"
        return f"{self.root}/{name}"

    def display_uri(self, name: str) -> str:
        """`uri(name)` without credentials (`s3://key:secret@bucket/...`), for messages."""
        return redact_uri(self.uri(name))

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self._path(name)).type == pafs.FileType.File

    def delete(self, name: str) -> None:
        """Remove `name` if it exists."""
        try:
            self.fs.delete_file(self._path(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            if self.exists(name):
                raise CheckpointError(f"Cannot delete {self.display_uri(name)}: {exc}") from exc

    def modified(self, name: str) -> float | None:
        """When `name` was last written (seconds since the epoch), if the filesystem says."""
        mtime = self.fs.get_file_info(self._path(name)).mtime
        return mtime.timestamp() if mtime else None

    def write_bytes(self, name: str, data: bytes) -> None:
        final = self._path(name)
        parent = final.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.{final.rsplit('/', 1)[1]}.{uuid.uuid4().hex}.tmp"
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, final)
        except Exception as exc:
            try:
                self.fs.delete_file(tmp)
            except Exception:  # best effort cleanup of our own temp file
                pass
            raise CheckpointError(f"Cannot write {self.display_uri(name)}: {exc}") from exc

    def read_bytes(self, name: str) -> bytes:
        try:
            with self.fs.open_input_stream(self._path(name)) as src:
                return src.read()
        except FileNotFoundError:
            raise CheckpointError(f"No {name} in run storage {self.display_uri('')}") from None
        except OSError as exc:
            raise CheckpointError(f"Cannot read {self.display_uri(name)}: {exc}") from exc

    def write_json(self, name: str, value: Any) -> None:
        self.write_bytes(name, json.dumps(value, ensure_ascii=False).encode())

    def read_json(self, name: str) -> Any:
        data = self.read_bytes(name)
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.display_uri(name)} is not valid JSON: {exc}") from exc

    def write_table(self, name: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.write_bytes(name, sink.getvalue().to_pybytes())

    def read_table(self, name: str) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.read_bytes(name)))

    def write_manifest(self, step: int, files: list[str]) -> None:
        self.write_json(MANIFEST, {"run_name": self.run_name, "step": step,
                                          "files": files, "time": time.time()})

    def has_checkpoint(self) -> bool:
        """Whether a checkpoint was completed here (its manifest and optimizer state)."""
        return self.exists(MANIFEST) and self.exists(OPTIMIZER_STATE)
