"""On RayEngine the optimizer actor owns the run: it outlives its driver and its own death.

One run, driven by a separate process on the session cluster: after two generations the
driver holds the run (a file the fake LM waits on), the test kills the driver with
SIGKILL, then kills the optimizer actor (Ray restarts it) while no driver is alive, and
lets the run go on. It must finish by itself with the best program and score table of an
uninterrupted run with the same seed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synaray.engines import LocalEngine
from synaray.engines.ray import RayEngine
from trainers.conftest import make_data, make_program

from .held_lm import make_held_program

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"
DEADLINE_S = 300.0  # a margin: the run takes a few seconds on a quiet machine


def _read(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or being replaced
        return None


def _close_actor(name):
    """A finished run's actor ends itself a while after its last follower; end it now."""
    import ray

    try:
        ray.kill(ray.get_actor(name, namespace="synaray"), no_restart=True)
    except ValueError:  # gone already
        pass


def _wait_for(what, check, proc=None):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver exited ({proc.returncode}) before {what}: "
                                 f"{proc.stderr.read().decode()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_run_finishes_without_driver_and_after_its_actor_restarts(ray_cluster, tmp_path):
    import ray

    storage, run = tmp_path / "runs", "outlives"
    hold = tmp_path / "hold"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    driver = subprocess.Popen(
        [sys.executable, "-c", "import asyncio, sys; from engines.held_lm import drive; "
         "asyncio.run(drive(*sys.argv[1:]))", ray_cluster.address, str(storage), run,
         str(hold)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for("the driver to hold the run after generation 2", hold.exists, driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    status = _read(storage / run / "status.json")
    assert status["state"] == "running" and status["stop_reason"] is None
    assert 2 <= status["generation"] < status["total_generations"]

    # no driver alive: kill the optimizer actor; Ray restarts it from its checkpoint
    actor = ray.get_actor(f"synaray-optimizer-{run}", namespace="synaray")
    ray.kill(actor, no_restart=False)
    hold.unlink()
    final = _wait_for("status.json to say finished",
                      lambda: (s := _read(storage / run / "status.json"))
                      and s["state"] == "finished" and s)
    _close_actor(f"synaray-optimizer-{run}")

    xs, ys = make_data(36)
    reference = await make_held_program()
    await reference.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.25, verbose=False,
                        engine=LocalEngine())
    best = json.loads((storage / run / "best_program.json").read_text())
    saved = json.loads((storage / run / "optimizer_state.json").read_text())["optimizer"]
    assert best["state"] == reference.get_state()
    assert saved["table"] == reference.optimizer.table.state_dict()
    assert final["stop_reason"] == reference.optimizer.stop_reason
    events = json.loads((storage / run / "events.json").read_text())["events"]
    assert [e["kind"] for e in events].count("train_begin") == 1  # one search, restarted
    assert events[-1]["kind"] == "train_end"


async def test_no_result_passes_through_the_driver(tmp_path, monkeypatch):
    """The driver receives events only: no EvalResult is built in this process, and what
    it receives holds no prediction or trace."""
    from synaray import callbacks
    from synaray.engines.ray import dispatch
    from synaray.trainers import events as events_module

    built = []  # results that came into this process (the pool of a driver builds them)
    real = dispatch.results_from_columns
    monkeypatch.setattr(dispatch, "results_from_columns",
                        lambda cols: built.append(len(cols["example_id"])) or real(cols))
    received = []
    follow = events_module.CallbackEvents.__call__

    def spy(self, event):
        received.append(json.dumps(event, default=str))
        return follow(self, event)

    monkeypatch.setattr(events_module.CallbackEvents, "__call__", spy)
    seen = []

    class Results(callbacks.Callback):
        def on_results(self, results):
            seen.extend(results)

    xs, ys = make_data(18)
    program = await make_program(seed=3)
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="no-results")
    history = await program.fit(xs, ys, epochs=1, batch_size=6, validation_split=0.25,
                                verbose=False, engine=engine, callbacks=[Results()])
    assert history.history["val_reward"]  # the fit ran and its callbacks got the logs
    assert built == [] and seen == []
    assert received and not any('"y_pred"' in r or '"trace"' in r for r in received)
    assert sum(len(r) for r in received) < 60_000  # events, not results: a few KB
    # the same engine object evaluates next (reusable), and that does come through here
    logs = await program.evaluate(xs, ys, engine=engine, verbose=False)
    assert sum(built) == len(xs) and 0.0 <= logs["accuracy"] <= 1.0
    await engine.close()
