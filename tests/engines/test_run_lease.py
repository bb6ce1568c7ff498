"""One writer per run name: the run lease on local disk and S3, and the runs that use it.

Runs that start at once with one name race for the lease: exactly one gets it, the others
stop at once with `RunLockedError` naming the run and the storage. A lease that is not
renewed expires (or is dead sooner: its process is gone) and is taken over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from helpers.s3_server import moto_s3
from synaray.errors import ConfigError
from synaray.runs.lease import (
    LeaseLostError,
    RunLease,
    RunLockedError,
    held_lease,
    lease_ttl_s,
)
from synaray.runs.storage import RunStorage


def race(storage: str, n: int, **kwargs) -> tuple[list[RunLease], list[Exception]]:
    """`n` threads, each with its own RunStorage, acquire the lease of run "twin" at once."""
    barrier = threading.Barrier(n)
    leases: list[RunLease] = []
    errors: list[Exception] = []

    def take() -> None:
        store = RunStorage(storage, "twin")
        barrier.wait()
        try:
            leases.append(RunLease.acquire(store, **kwargs))
        except RunLockedError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return leases, errors


def test_concurrent_acquires_on_local_disk_let_exactly_one_in(tmp_path):
    for _ in range(5):  # a race: repeat it
        leases, errors = race(str(tmp_path / "runs"), 8)
        assert len(leases) == 1 and len(errors) == 7
        assert all("Run 'twin' in " in str(e) and str(tmp_path / "runs") in str(e)
                   for e in errors)
        assert "in use by driver pid" in str(errors[0])
        leases[0].release()
    names = os.listdir(tmp_path / "runs" / "twin" / "lease")
    assert names == ["00000005.json"]  # older generations and temporary files are gone


def test_concurrent_acquires_on_s3_let_exactly_one_in(monkeypatch):
    with moto_s3("leases", monkeypatch) as server:
        storage = server.uri("runs")
        leases, errors = race(storage, 4, settle_s=0.3)
        assert len(leases) == 1 and len(errors) == 3
        assert "Run 'twin' in s3://leases/runs?endpoint_override=" in str(errors[0])
        leases[0].renew()  # the winner's lease is the stored one
        leases[0].release()
        assert RunLease.acquire(RunStorage(storage, "twin"), settle_s=0.1).generation == 2


def test_an_expired_lease_is_taken_over_and_its_holder_finds_out(tmp_path):
    store = RunStorage(str(tmp_path), "run")
    old = RunLease.acquire(store, ttl_s=0.5)  # never renewed: its process hangs
    with pytest.raises(RunLockedError, match="expires in"):
        RunLease.acquire(RunStorage(str(tmp_path), "run"))
    time.sleep(max(0.0, old.record()["expires"] - time.time()) + 0.05)
    new = RunLease.acquire(RunStorage(str(tmp_path), "run"))
    assert new.generation == old.generation + 1
    with pytest.raises(LeaseLostError, match="another run took its lease over"):
        old.renew()
    with pytest.raises(LeaseLostError):
        old.check()  # what a checkpoint asks before it writes
    old.release()  # does not free the new holder's lease
    with pytest.raises(RunLockedError):
        RunLease.acquire(RunStorage(str(tmp_path), "run"))


def test_the_heartbeat_keeps_a_short_lease_alive(tmp_path):
    lease = RunLease.acquire(RunStorage(str(tmp_path), "run"), ttl_s=0.6)
    lease.start_heartbeat(interval_s=0.1)
    try:
        first = lease.record()["expires"]
        end = time.time() + 1.5  # more than twice the lifetime
        while time.time() < end:
            with pytest.raises(RunLockedError):
                RunLease.acquire(RunStorage(str(tmp_path), "run"))
            time.sleep(0.2)
        assert lease.record()["expires"] > first + 0.5
    finally:
        lease.release()
    assert lease.record()["released"]
    RunLease.acquire(RunStorage(str(tmp_path), "run")).release()  # free at once


_HOLDER = textwrap.dedent("""
    import sys, time
    from synaray.runs.lease import RunLease
    from synaray.runs.storage import RunStorage
    RunLease.acquire(RunStorage(sys.argv[1], "run"), ttl_s=600).start_heartbeat()
    print("held", flush=True)
    time.sleep(600)
""")


def test_the_lease_of_a_killed_process_on_this_host_is_taken_at_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n", holder.stderr.read().decode()[-2000:]
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} on host"):
            RunLease.acquire(RunStorage(str(tmp_path), "run"))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lease = RunLease.acquire(RunStorage(str(tmp_path), "run"))  # 600 s early
    assert lease.generation == 2
    lease.release()


def test_a_lease_from_another_host_counts_until_it_expires(tmp_path):
    store = RunStorage(str(tmp_path), "run")
    record = {"token": "t", "owner": {"kind": "driver", "host": "elsewhere", "pid": 1},
              "renewed": time.time(), "expires": time.time() + 60, "released": False}
    store.write_json("lease/00000007.json", record)
    with pytest.raises(RunLockedError, match="driver pid 1 on host 'elsewhere'"):
        RunLease.acquire(store)
    gone = RunLease.acquire(store, holder_gone=lambda r: r["owner"]["host"] == "elsewhere")
    assert gone.generation == 8
    gone.release()


def test_the_lease_lifetime_setting(monkeypatch):
    assert lease_ttl_s() == 60.0
    monkeypatch.setenv("SYNARAY_LEASE_TTL_S", "5")
    assert lease_ttl_s() == 5.0 and lease_ttl_s(2) == 2.0
    monkeypatch.setenv("SYNARAY_LEASE_TTL_S", "soon")
    with pytest.raises(ConfigError, match="SYNARAY_LEASE_TTL_S: 'soon'; expected a number"):
        lease_ttl_s()


# --- runs ------------------------------------------------------------------------------------
def test_two_config_runs_started_at_once_with_one_name(tmp_path):
    """Two `synaray fit`s of one run name (different seeds) start together: one runs, the
    other stops at once, and the run folder holds the winner's config only."""
    import yaml

    from helpers.fit_programs import thirds_config
    from synaray.config import load_run_config, run_fit

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(thirds_config(tmp_path, epochs=1)))
    configs = [load_run_config(path, {"run_name": "twin", "training.seed": seed})
               for seed in (1, 2)]
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}
    times: dict[int, float] = {}

    def fit(index: int) -> None:
        barrier.wait()
        start = time.monotonic()
        try:
            results[index] = run_fit(configs[index], verbose=False)
        except Exception as exc:  # the test inspects it
            results[index] = exc
        times[index] = time.monotonic() - start

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    failed = [i for i, r in results.items() if isinstance(r, Exception)]
    assert len(results) == 2 and len(failed) == 1, results
    loser, winner = failed[0], 1 - failed[0]
    error = str(results[loser])
    assert isinstance(results[loser], ConfigError)
    assert "Run 'twin'" in error and str(tmp_path / "runs") in error
    assert times[loser] < times[winner]  # it did not wait for the winner
    saved = json.loads((tmp_path / "runs" / "twin" / "run_config.json").read_text())
    assert saved["training"]["seed"] == configs[winner].training.seed
    lease = json.loads(next((tmp_path / "runs" / "twin" / "lease").iterdir()).read_text())
    assert lease["released"]  # the finished run freed the name


def test_a_local_checkpoint_stops_once_the_lease_is_lost(tmp_path):
    from synaray.callbacks.backup_and_restore import RunStorageCheckpoint

    store = RunStorage(str(tmp_path), "run")
    lease = RunLease.acquire(store, ttl_s=0.3)
    assert held_lease(store) is lease
    checkpoint = RunStorageCheckpoint(store)
    time.sleep(0.4)
    RunLease.acquire(RunStorage(str(tmp_path), "run"))  # another run takes it over
    with pytest.raises(LeaseLostError):
        lease.renew()
    with pytest.raises(LeaseLostError):
        checkpoint._write()  # before touching the optimizer or any file
    assert not (tmp_path / "run" / "optimizer_state.json").exists()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_a_ray_run_is_held_by_its_optimizer_actor(tmp_path):
    from synaray import callbacks
    from synaray.engines.ray import RayEngine
    from trainers.conftest import make_data, make_program

    seen: list[str] = []

    class TryToStartTheSameRun(callbacks.Callback):
        def on_batch_end(self, step, logs=None):
            if step == 1:
                with pytest.raises(RunLockedError) as info:
                    RunLease.acquire(RunStorage(str(tmp_path), "held"))
                seen.append(str(info.value))

    xs, ys = make_data(24)
    program = await make_program(seed=7)
    engine = RayEngine(num_evaluators=1, storage=str(tmp_path), run_name="held")
    await program.fit(xs, ys, engine=engine, callbacks=[TryToStartTheSameRun()], epochs=1,
                      batch_size=6, validation_split=0.25, verbose=False)
    assert seen and "Run 'held' in " in seen[0] and "optimizer actor pid" in seen[0]
    records = list((tmp_path / "held" / "lease").iterdir())
    assert len(records) == 1 and json.loads(records[0].read_text())["released"]
