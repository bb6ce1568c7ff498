"""Test-session set-up shared by every test package.

- `SYNARAY_CACHE_DIR` points at a fresh temporary directory for the whole session, set here
  at import (before any test module imports synaray), so tests never touch a user's cache.
- `SYNARAY_PREFLIGHT=0`: fits do not send each model a check request first (scripted stub
  servers would count it); tests of the preflight turn it on explicitly.
- `local_lm_server` (session): the real SmolLM2 llama.cpp server, started once; skipped with
  the reason when the `local` extra is missing. `local_lm`: a `LanguageModel` on it,
  uncached. It is recorded in the session cache dir, so `LanguageModel("local/smollm2-135m")`
  reuses it too.
- `openai_stub`: a loopback OpenAI-compatible server with scripted replies
  (`tests/helpers/openai_stub.py`).
"""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE_DIR = tempfile.mkdtemp(prefix="synaray-test-cache-")
os.environ["SYNARAY_CACHE_DIR"] = _CACHE_DIR
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["SYNARAY_PREFLIGHT"] = "0"

import pytest  # noqa: E402

from helpers.openai_stub import OpenAIStub  # noqa: E402
from helpers.ray_cluster import ray_cluster  # noqa: E402, F401  (one Ray cluster per session)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def local_lm_server():
    """The real local LM server (SmolLM2-135M through llama.cpp), one per session."""
    from synaray.errors import MissingExtraError
    from synaray.lm.local.server import start_local_lm_server

    try:
        # One thread: test machines are shared, and llama.cpp's two threads then wait on
        # each other (measured: 1 thread several times faster under CPU contention).
        server = start_local_lm_server(record=True, n_threads=1)
    except MissingExtraError as exc:
        pytest.skip(f"the `local` extra is not installed: {exc}")
    yield server
    server.stop()


@pytest.fixture
def local_lm(local_lm_server):
    """A `LanguageModel` on the session's local server, with the cache off."""
    return local_lm_server.language_model(cache=False)


@pytest.fixture
def openai_stub():
    """A started `OpenAIStub` (scripted loopback OpenAI server), stopped after the test."""
    with OpenAIStub() as stub:
        yield stub
