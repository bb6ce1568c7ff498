"""Run naming, the one existence check, the data snapshot, and the one Ray connection's
choices (recorded from `ray.init`'s arguments: no cluster is started)."""

from __future__ import annotations

import re

import pytest

import synaray
from synaray.data import Dataset
from synaray.errors import CheckpointError, ConfigError
from synaray.runs import ray_connect
from synaray.runs.files import RUN_CONFIG
from synaray.runs.lease import RunLease, RunLockedError, held_lease
from synaray.runs.naming import claim_run, new_run_name
from synaray.runs.snapshot import has_snapshot, read_snapshot, write_snapshot
from synaray.runs.storage import RunStorage


class Q(synaray.DataModel):
    q: str


def test_run_names_are_unique_and_stamped():
    names = {new_run_name("qa") for _ in range(20)}
    assert len(names) == 20
    assert all(re.fullmatch(r"qa-\d{8}-\d{6}-[0-9a-f]{6}", n) for n in names)


def test_claim_run_checks_existence_with_the_lease(tmp_path):
    store = RunStorage(str(tmp_path), "r")
    with pytest.raises(ConfigError, match="Nothing to resume: no checkpoint of run 'r'"):
        claim_run(store, resume=True)
    assert held_lease(store) is None  # released on the failed check
    lease = claim_run(store, resume=False)
    assert held_lease(store) is lease
    # a second run of the name in this process is locked out (not handed our lease)
    with pytest.raises(RunLockedError):
        claim_run(RunStorage(str(tmp_path), "r"), resume=False)
    store.write_json(RUN_CONFIG, {})  # what `synaray fit` writes after taking the lease
    # its engine, in this process, uses the held lease and does not count that config
    assert claim_run(store, resume=False, use_held=True) is lease
    lease.release()
    # another process (no held lease) sees a run that exists
    with pytest.raises(ConfigError, match=r"already exists.*synaray resume r"):
        claim_run(RunStorage(str(tmp_path), "r"), resume=False,
                  resume_hint="continue it with `synaray resume r`")


def test_a_live_run_is_never_claimed(tmp_path):
    store = RunStorage(str(tmp_path), "live")
    with pytest.raises(ConfigError, match="already exists"):
        claim_run(store, resume=False, live=True)
    assert claim_run(store, resume=True, live=True) is None  # its actor keeps the lease
    assert RunLease.acquire(store).generation == 1  # nothing was taken by the checks


def test_the_snapshot_round_trips(tmp_path):
    store = RunStorage(str(tmp_path), "s")
    assert not has_snapshot(store)
    with pytest.raises(CheckpointError, match=r"data/train\.parquet"):
        read_snapshot(store)
    train = Dataset(["a", "b"], [Q(q="1"), Q(q="2")])
    write_snapshot(store, train=train, test=Dataset(["c"], [Q(q="3")]))
    write_snapshot(store, train=Dataset(["z"], [Q(q="9")]), overwrite=False)  # kept
    back = read_snapshot(store)
    assert back.train.ids == ["a", "b"] and back.val is None and back.test.ids == ["c"]
    assert back.train.fetch(["b"])[0][0].get_json() == {"q": "2"}


@pytest.fixture
def recorded_init(monkeypatch):
    import ray

    calls: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-runs-connect")
    monkeypatch.setenv("SYNARAY_CACHE_DIR", "cache-dir")
    return calls


def test_connect_starts_a_new_local_cluster_with_no_secret(recorded_init):
    assert ray_connect.connect() is True
    kwargs = recorded_init[-1]
    assert kwargs["address"] == "local" and kwargs["namespace"] == "synaray"
    env = kwargs["runtime_env"]["env_vars"]
    assert "PYTHONPATH" in env and env["SYNARAY_CACHE_DIR"] == "cache-dir"
    assert "sk-planted-runs-connect" not in repr(kwargs)
    ray_connect.connect(env_vars=("OPENAI_API_KEY",))  # named: the user's choice
    assert recorded_init[-1]["runtime_env"]["env_vars"]["OPENAI_API_KEY"] == \
        "sk-planted-runs-connect"


def test_connect_joins_the_jobs_cluster_or_an_address(recorded_init, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert ray_connect.joins_cluster(None)
    ray_connect.connect()
    assert "address" not in recorded_init[-1] and "runtime_env" not in recorded_init[-1]
    ray_connect.connect("ray://head:10001", {"env_vars": {"A": "1"}})
    assert recorded_init[-1]["address"] == "ray://head:10001"
    assert recorded_init[-1]["runtime_env"] == {"env_vars": {"A": "1"}}
    assert "sk-planted-runs-connect" not in repr(recorded_init)


def test_connect_keeps_an_open_connection(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "init", lambda **kwargs: pytest.fail("connected twice"))
    assert ray_connect.connect("auto") is False
    assert ray_connect.actor_runtime_env(None, (), started=False) is None
