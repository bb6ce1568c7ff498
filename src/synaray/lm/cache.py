"""The response cache: one SQLite file, shared by threads and processes.

Keys are the sha256 of the canonical JSON of everything that decides an answer (model,
api_base, messages, sampling parameters, response format or grammar); see `cache_key`.
Only successful, validated answers are stored: a failure is never cached, so a transient
error cannot turn into a permanent zero score.

The file uses WAL journaling and a busy timeout, so several processes (Ray workers on one
machine) and threads can read and write it at once. Each thread gets its own connection.
SQLite work is done off the event loop (`asyncio.to_thread`). A broken cache (unwritable
directory, corrupt file) is logged once and then behaves as an empty cache: it never fails
a model call. WAL needs a local filesystem, not NFS.

Example:
    >>> import tempfile, os
    >>> cache = ResponseCache(os.path.join(tempfile.mkdtemp(), "c.sqlite"))
    >>> key = cache_key({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    >>> cache.get(key) is None
    True
    >>> cache.set(key, {"text": "hello"})
    >>> cache.get(key)
    {'text': 'hello'}
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from synaray.data.schema_utils import canonical_json
from synaray.errors import ConfigError

__all__ = ["ResponseCache", "cache_key", "default_cache_dir", "resolve_cache"]

logger = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses "
    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS embeddings "
    "(key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL)",
)
_BUSY_TIMEOUT_S = 30.0
_SQL_BATCH = 500  # below SQLite's limit of host parameters per statement


def default_cache_dir() -> Path:
    """`$SYNARAY_CACHE_DIR`, else `~/.cache/synaray`."""
    return Path(os.environ.get("SYNARAY_CACHE_DIR") or Path.home() / ".cache" / "synaray")


def cache_key(payload: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of `payload`."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _set_up(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in _SCHEMA:
        conn.execute(statement)


class ResponseCache:
    """A key-value store of model answers in one SQLite file.

    Args:
        path: the SQLite file (created with its directory when missing).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._broken = False

    # -- connections -----------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            conn = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._broken = True
            logger.warning("synaray: the LM response cache %s is unusable (%s); running "
                           "without a cache.", self.path, exc)
            return None
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._lock:
            self._connections.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                _set_up(conn)
                return conn
            except sqlite3.OperationalError as exc:
                # Switching to WAL and creating tables need a write lock, and SQLite does
                # not always wait for it (busy handler skipped): retry for a while.
                transient = "locked" in str(exc) or "busy" in str(exc)
                if not transient or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.01 + random.random() * 0.05)

    def _run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        conn = self._connection()
        if conn is None:
            return []
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            logger.warning("synaray: LM cache %s: %s (ignored)", self.path, exc)
            return []

    # -- responses -------------------------------------------------------------------
    def get(self, key: str) -> dict | None:
        rows = self._run("SELECT value FROM responses WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def set(self, key: str, value: dict) -> None:
        self._run("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                  (key, json.dumps(value, ensure_ascii=False), time.time()))

    async def aget(self, key: str) -> dict | None:
        return await asyncio.to_thread(self.get, key)

    async def aset(self, key: str, value: dict) -> None:
        await asyncio.to_thread(self.set, key, value)

    # -- embeddings (float64 vectors, one row per text) ------------------------------
    def get_vectors(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), _SQL_BATCH):
            chunk = keys[start:start + _SQL_BATCH]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._run(
                    f"SELECT key, value FROM embeddings WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float64)
        return found

    def set_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        conn = self._connection()
        if conn is None or not vectors:
            return
        now = time.time()
        rows = [(k, np.asarray(v, dtype=np.float64).tobytes(), now) for k, v in vectors.items()]
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (key, value, created) VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            logger.warning("synaray: LM cache %s: %s (ignored)", self.path, exc)

    async def aget_vectors(self, keys: list[str]) -> dict[str, np.ndarray]:
        return await asyncio.to_thread(self.get_vectors, keys)

    async def aset_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        await asyncio.to_thread(self.set_vectors, vectors)

    # -- housekeeping ----------------------------------------------------------------
    def __len__(self) -> int:
        rows = self._run("SELECT (SELECT COUNT(*) FROM responses) + "
                         "(SELECT COUNT(*) FROM embeddings)")
        return int(rows[0][0]) if rows else 0

    def clear(self) -> None:
        self._run("DELETE FROM responses")
        self._run("DELETE FROM embeddings")

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"path": str(self.path)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<ResponseCache path={self.path}>"


_SHARED: dict[str, ResponseCache] = {}
_SHARED_LOCK = threading.Lock()


def resolve_cache(cache: bool | str | os.PathLike[str] | None) -> ResponseCache | None:
    """The cache a model uses: True = the default file, False/None = none, a path = that file.

    Instances are shared per file within a process.
    """
    if cache is None or cache is False:
        return None
    if cache is True:
        path = default_cache_dir() / "lm_cache.sqlite"
    elif isinstance(cache, str | os.PathLike):
        path = Path(cache).expanduser()
    else:
        raise ConfigError(
            f"Invalid value for argument `cache`. Received: {cache!r}. Expected True, False, "
            "None or the path of a SQLite file."
        )
    key = str(path.resolve())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ResponseCache(path)
        return _SHARED[key]
