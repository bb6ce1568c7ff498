"""One writer per run name: a lease object in the run's folder, renewed while the run lives.

A run holds `<storage>/<run_name>/lease/<generation>.json` while it writes the folder: who
holds it (driver or optimizer actor, host, pid, Ray cluster), a random token, and when it
expires (wall clock, `ttl_s` after the last renewal; default 60 s, `SYNARAY_LEASE_TTL_S`).
The holder renews it every `ttl_s / 3` from a background thread and marks it released when
the run ends. A second run that starts with the same name finds the live lease and stops at
once with `RunLockedError`, before it writes anything. A run whose process died leaves a
lease that expires, or that is known dead sooner (its pid is gone on this host, or its
optimizer actor is gone from this Ray cluster); a new run or `resume` then takes it over.

Taking a lease creates the next generation's file, never rewrites one, so two runs taking
over the same dead lease race for one name:

- local disk: the record is written to a temporary file, then hard-linked to its final name,
  which fails if the name exists (atomic create-if-absent, also on NFS);
- object stores (s3://, gs://): pyarrow has no create-if-absent, so the record is written
  only if the name is free, then read back after `settle_s` (0.5 s): the run whose token is
  there holds the lease. Two runs whose checks and writes fall within the same
  `settle_s` both see their own token only if one wrote after the other read back, a
  window of one PUT's latency; the loser finds out at its next renewal (`LeaseLostError`,
  at most `ttl_s / 3` later) and its checkpoints refuse to write from then on.

Expiry compares wall clocks of different machines: keep them synchronised (NTP), or raise
`ttl_s` above the worst skew.

Example:
    >>> import tempfile
    >>> from synaray.runs.storage import RunStorage
    >>> store = RunStorage(tempfile.mkdtemp(), "demo")
    >>> lease = RunLease.acquire(store)
    >>> RunLease.acquire(store)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    synaray.runs.lease.RunLockedError: Run 'demo' in ... is in use by ...
    >>> lease.release()
    >>> RunLease.acquire(store).generation
    2
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow.fs as pafs

from synaray.errors import CheckpointError, ConfigError
from synaray.runs.files import LEASE_DIR
from synaray.runs.ray_connect import cluster_address
from synaray.runs.storage import redact_uri

__all__ = ["DEFAULT_TTL_S", "LeaseLostError", "RunLease", "RunLockedError", "held_lease",
           "lease_ttl_s"]

DEFAULT_TTL_S = 60.0
TTL_ENV = "SYNARAY_LEASE_TTL_S"

_HELD: dict[tuple[str, str], RunLease] = {}
_HELD_LOCK = threading.Lock()


class RunLockedError(ConfigError):
    """Another live run holds the run name (its lease in run storage is live)."""


class LeaseLostError(CheckpointError):
    """This run's lease was taken over by another run: it must not write the folder."""


def lease_ttl_s(ttl_s: float | None = None) -> float:
    """The lease lifetime: `ttl_s`, else `SYNARAY_LEASE_TTL_S`, else 60 s.

    Raises:
        ConfigError: a value that is not a number > 0.
    """
    value: Any = ttl_s if ttl_s is not None else os.environ.get(TTL_ENV, DEFAULT_TTL_S)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        source = "ttl_s" if ttl_s is not None else TTL_ENV
        raise ConfigError(f"Invalid value for {source}: {value!r}; expected a number of "
                          "seconds > 0.")
    return number


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def owner_info(kind: str) -> dict:
    """Who takes a lease: `kind` ("driver", "optimizer actor"), host, pid, Ray cluster."""
    return {"kind": kind, "host": socket.gethostname(), "pid": os.getpid(),
            "cluster": cluster_address()}


def _describe(record: dict, now: float) -> str:
    owner = record.get("owner") or {}
    renewed = now - float(record.get("renewed", now))
    left = float(record.get("expires", now)) - now
    return (f"{owner.get('kind', 'process')} pid {owner.get('pid')} on host "
            f"{owner.get('host')!r} (lease renewed {renewed:.0f} s ago, expires in "
            f"{left:.0f} s unless renewed)")


class RunLease:
    """A live run's claim on its run name, in run storage; see the module docstring.

    Take one with `RunLease.acquire(store)`; a process the run is handed to (the optimizer
    actor) continues it with `RunLease.adopt(store, token)`. `start_heartbeat()` renews it
    in the background; `check()` raises `LeaseLostError` once another run took it over;
    `release()` ends it.

    Example:
        >>> import tempfile
        >>> from synaray.runs.storage import RunStorage
        >>> lease = RunLease.acquire(RunStorage(tempfile.mkdtemp(), "demo"), ttl_s=30)
        >>> lease.record()["owner"]["kind"], lease.ttl_s
        ('driver', 30.0)
        >>> lease.release()
    """

    def __init__(self, store: Any, token: str, generation: int, owner: dict,
                 ttl_s: float) -> None:
        self.store = store
        self.token = token
        self.generation = generation
        self.owner = owner
        self.ttl_s = ttl_s
        self.lost: LeaseLostError | None = None
        self.released = False
        self.handed_over = False
        self._acquired = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- taking a lease ---------------------------------------------------------------
    @classmethod
    def acquire(cls, store: Any, *, kind: str = "driver", ttl_s: float | None = None,
                holder_gone: Callable[[dict], bool] | None = None,
                settle_s: float = 0.5) -> RunLease:
        """Take the run name, or raise `RunLockedError` at once if a live run holds it.

        Args:
            store: the run's `RunStorage`.
            kind: who holds it, for messages ("driver", "optimizer actor").
            ttl_s: seconds the lease lives without renewal (default `lease_ttl_s()`).
            holder_gone: `holder_gone(record) -> bool`, True when the caller knows the
                holder is dead although its lease has not expired yet.
            settle_s: object stores only: the wait before reading a new lease back.

        Raises:
            RunLockedError: a live run holds the name (the message names the run, the
                storage and the holder).
        """
        ttl = lease_ttl_s(ttl_s)
        token = uuid.uuid4().hex
        for _ in range(5):
            generation, record = _current(store)
            if record is not None and _live(record, time.time()) and not (
                    holder_gone is not None and holder_gone(record)):
                raise _locked(store, record)
            lease = cls(store, token, generation + 1, owner_info(kind), ttl)
            if _create(store, lease.generation, lease._record(), settle_s):
                _delete_older(store, lease.generation)
                lease._register()
                return lease
        generation, record = _current(store)
        raise _locked(store, record or {})

    @classmethod
    def adopt(cls, store: Any, token: str, *, kind: str = "optimizer actor",
              ttl_s: float | None = None) -> RunLease:
        """Continue the lease `token` in this process (a restarted holder does the same).

        Raises:
            LeaseLostError: another run holds the name now.
        """
        generation, record = _current(store)
        if record is None or record.get("token") != token:
            raise LeaseLostError(
                f"Run {store.run_name!r} in {_where(store)}: its lease was taken "
                f"over by another run ({_describe(record or {}, time.time())}).")
        lease = cls(store, token, generation, owner_info(kind), lease_ttl_s(ttl_s))
        lease._acquired = float(record.get("acquired", time.time()))
        lease.renew()
        lease._register()
        return lease

    # --- keeping it -------------------------------------------------------------------
    def record(self) -> dict:
        """The lease as stored now (read from storage)."""
        return _read(self.store, self.generation) or {}

    def renew(self) -> None:
        """Push the expiry `ttl_s` ahead.

        Raises:
            LeaseLostError: another run took the name over (also kept in `lost`).
        """
        generation, record = _current(self.store)
        if generation != self.generation or (record or {}).get("token") != self.token:
            self.lost = LeaseLostError(
                f"Run {self.store.run_name!r} in {_where(self.store)}: another run "
                f"took its lease over ({_describe(record or {}, time.time())}); this one "
                "stops writing the run folder.")
            raise self.lost
        _write(self.store, self.generation, self._record())

    def check(self) -> None:
        """Raise `LeaseLostError` if the heartbeat found the lease taken over."""
        if self.lost is not None:
            raise self.lost

    def start_heartbeat(self, interval_s: float | None = None) -> RunLease:
        """Renew every `interval_s` (default `ttl_s / 3`) in a daemon thread."""
        if self._thread is None:
            interval = interval_s or self.ttl_s / 3.0
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True,
                                            name=f"synaray-lease-{self.store.run_name}")
            self._thread.start()
        return self

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception:  # a storage hiccup: try again at the next beat
                continue

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    def hand_over(self) -> str:
        """Stop renewing here (another process adopts the token); returns the token."""
        self.stop_heartbeat()
        self._unregister()
        self.handed_over = True
        return self.token

    def release(self) -> None:
        """End the lease: the run name is free at once (best effort, never raises).
        Nothing happens after `hand_over`: the process that adopted the lease ends it."""
        self.stop_heartbeat()
        self._unregister()
        if self.released or self.handed_over:
            return
        self.released = True
        try:
            generation, record = _current(self.store)
            if generation == self.generation and (record or {}).get("token") == self.token:
                _write(self.store, self.generation, {**self._record(), "released": True,
                                                     "expires": time.time()})
        except Exception:  # the lease then expires on its own
            pass

    # --- internals --------------------------------------------------------------------
    def _record(self) -> dict:
        now = time.time()
        return {"run_name": self.store.run_name, "token": self.token,
                "generation": self.generation, "owner": self.owner,
                "acquired": self._acquired, "renewed": now, "expires": now + self.ttl_s,
                "ttl_s": self.ttl_s, "released": False}

    def _register(self) -> None:
        self.store.lease = self  # what this run's checkpoints check
        with _HELD_LOCK:
            _HELD[_key(self.store)] = self

    def _unregister(self) -> None:
        with _HELD_LOCK:
            if _HELD.get(_key(self.store)) is self:
                del _HELD[_key(self.store)]

    def __repr__(self) -> str:
        return (f"<RunLease run={self.store.run_name!r} generation={self.generation} "
                f"{'lost' if self.lost else 'released' if self.released else 'held'}>")


def held_lease(store: Any) -> RunLease | None:
    """The lease this process holds on the run of `store`, if any."""
    with _HELD_LOCK:
        return _HELD.get(_key(store))


def _key(store: Any) -> tuple[str, str]:
    return (store.fs.type_name, store.root)


def _live(record: dict, now: float) -> bool:
    if record.get("released") or float(record.get("expires", 0.0)) <= now:
        return False
    owner = record.get("owner") or {}
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return _pid_alive(owner["pid"])  # a dead process on this host holds nothing
    return True


def _where(store: Any) -> str:
    return redact_uri(store.storage)


def _locked(store: Any, record: dict) -> RunLockedError:
    return RunLockedError(
        f"Run {store.run_name!r} in {_where(store)} is in use by "
        f"{_describe(record, time.time())}. One run writes a run name at a time: wait for "
        "it to end, choose another run name, or, if its process is gone, retry after the "
        "lease expires.")


# --- storage -----------------------------------------------------------------------------
def _lease_dir(store: Any) -> str:
    return f"{store.root}/{LEASE_DIR}"


def _name(generation: int) -> str:
    return f"{LEASE_DIR}/{generation:08d}.json"


def _generations(store: Any) -> list[int]:
    try:
        infos = store.fs.get_file_info(pafs.FileSelector(_lease_dir(store),
                                                         allow_not_found=True))
    except FileNotFoundError:  # the folder appeared or went while it was listed (a race)
        return []
    out = []
    for info in infos:
        stem = info.base_name.removesuffix(".json")
        if info.type == pafs.FileType.File and info.base_name.endswith(".json") \
                and stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def _read(store: Any, generation: int) -> dict | None:
    try:
        with store.fs.open_input_stream(f"{store.root}/{_name(generation)}") as src:
            return json.loads(src.read())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _current(store: Any) -> tuple[int, dict | None]:
    """(highest generation or 0, its record); a record deleted or being written meanwhile
    is read again."""
    for attempt in range(10):
        generations = _generations(store)
        if not generations:
            return 0, None
        record = _read(store, generations[-1])
        if record is not None:
            return generations[-1], record
        time.sleep(0.01 * attempt)
    # Still unreadable (a write torn by a crash, or a storage that keeps failing): not a free
    # name. It counts as held until a lease lifetime after the file was last written, so a
    # reader never takes over a lease it could not read and a corrupt file does not lock the
    # name for ever.
    info = store.fs.get_file_info(f"{store.root}/{_name(generations[-1])}")
    written = info.mtime.timestamp() if info.mtime is not None else time.time()
    return generations[-1], {"unreadable": True, "renewed": written,
                             "expires": written + lease_ttl_s()}


def _write(store: Any, generation: int, record: dict) -> None:
    store.write_json(_name(generation), record)


def _create(store: Any, generation: int, record: dict, settle_s: float) -> bool:
    """Create the generation's file only if absent; True if this call created it."""
    data = json.dumps(record).encode()
    final = f"{store.root}/{_name(generation)}"
    if isinstance(store.fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = f"{final}.{record['token']}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
        try:
            os.link(tmp, final)  # fails if `final` exists: atomic create-if-absent
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem: exclusive create, then write
            return _create_exclusive(final, data)
        finally:
            os.unlink(tmp)
    if store.fs.get_file_info(final).type != pafs.FileType.NotFound:
        return False
    store.write_bytes(_name(generation), data)
    time.sleep(settle_s)
    return (_read(store, generation) or {}).get("token") == record["token"]


def _create_exclusive(path: str, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return True


def _delete_older(store: Any, generation: int) -> None:
    for old in _generations(store):
        if old < generation:
            try:
                store.fs.delete_file(f"{store.root}/{_name(old)}")
            except OSError:  # deleted by another process meanwhile
                pass
