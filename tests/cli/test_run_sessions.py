"""What `synaray fit/evaluate` hold open: the local model server's address and the Ray link.

The local server's address goes into `SYNARAY_LOCAL_LM_API_BASE` only for runs in this
process or on a Ray cluster the command starts, never into a cluster it joins (each node
there starts or reuses its own server).
"""

from __future__ import annotations

import os

import pytest

from synaray.config import resolve_storage
from synaray.config.sessions import ENV_API_BASE, local_model_session
from synaray.runs.ray_connect import joins_cluster


@pytest.fixture
def running_server(monkeypatch: pytest.MonkeyPatch) -> str:
    """Pretend a local server is reachable (nothing is started)."""
    import synaray.lm.local.server as server

    monkeypatch.delenv(ENV_API_BASE, raising=False)
    monkeypatch.setattr(server, "find_local_lm_server", lambda: "http://127.0.0.1:9/v1")
    return "http://127.0.0.1:9/v1"


def test_the_address_is_exported_for_runs_this_command_owns(running_server: str) -> None:
    lines: list[str] = []
    with local_model_session(True, export=True, say=lines.append) as api_base:
        assert api_base == running_server
        assert os.environ[ENV_API_BASE] == running_server
    assert ENV_API_BASE not in os.environ  # restored
    assert lines == [f"local model: using the server at {running_server}"]


def test_the_address_is_not_exported_into_a_joined_cluster(running_server: str) -> None:
    with local_model_session(True, export=False, say=lambda _: None) as api_base:
        assert api_base == running_server
        assert ENV_API_BASE not in os.environ


def test_a_previous_setting_is_restored(running_server: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_BASE, "http://127.0.0.1:1/v1")
    with local_model_session(True, export=True, say=lambda _: None):
        assert os.environ[ENV_API_BASE] == running_server
    assert os.environ[ENV_API_BASE] == "http://127.0.0.1:1/v1"


def test_nothing_happens_without_the_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import synaray.lm.local.server as server

    def fail() -> None:
        raise AssertionError("must not look for a server")

    monkeypatch.setattr(server, "find_local_lm_server", fail)
    with local_model_session(False, export=True, say=lambda _: None) as api_base:
        assert api_base is None


def test_joining_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert joins_cluster("auto") and joins_cluster("127.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")  # inside `ray job submit`
    assert joins_cluster(None)


def test_storage_is_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_storage("runs") == (str(tmp_path / "runs"), True)
    assert resolve_storage(None) == (str(tmp_path / "synaray_runs"), True)
    assert resolve_storage(str(tmp_path)) == (str(tmp_path), False)
    assert resolve_storage("s3://bucket/runs") == ("s3://bucket/runs", False)
