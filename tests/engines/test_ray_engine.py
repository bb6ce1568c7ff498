"""RayEngine against a real 3-node local cluster (one per session, see tests/ray_cluster.py)."""

import asyncio

import numpy as np
import pytest

import synaray
from synaray import callbacks
from synaray.engines import LocalEngine
from synaray.engines.ray import RayEngine
from synaray.optimizers.protocol import EvalRequest, candidate_id
from synaray.rewards import BatchRewardFunctionWrapper
from synaray.saving import register_synaray_serializable
from synaray.trainers.data_adapter import to_dataset
from trainers.conftest import make_data, make_program

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

FIT = dict(epochs=2, batch_size=6, validation_split=0.25, verbose=False)



async def fit(engine, seed=7, jitter_s=0.005, latency_seed=1, cbs=None, resume=False):
    xs, ys = make_data(36)
    program = await make_program(seed=seed, jitter_s=jitter_s, latency_seed=latency_seed)
    history = await program.fit(xs, ys, engine=engine, callbacks=cbs, resume=resume, **FIT)
    return program, history


def summary(program, history):
    gens = [{k: v for k, v in g.items()} for g in history.generations]
    return gens, history.history["val_reward"], program.get_state()


async def test_local_and_ray_with_1_and_4_evaluators_agree(tmp_path):
    local = summary(*await fit(LocalEngine()))
    one = summary(*await fit(RayEngine(num_evaluators=1, storage=str(tmp_path), run_name="e1"),
                             latency_seed=2))
    four = summary(*await fit(RayEngine(num_evaluators=4, storage=str(tmp_path),
                                        run_name="e4"), latency_seed=3))
    assert local == one == four
    assert local[1][-1] == 1.0
    saved = synaray.Program.load(tmp_path / "e4" / "best_program.json")
    assert saved.get_state() == four[2]


@register_synaray_serializable(package="tests")
async def centred_reward(y_true, y_pred):
    """Group-relative: exact match minus the batch mean (needs the whole batch)."""
    raw = [1.0 if p is not None and t.get_json() == p.get_json() else 0.0
           for t, p in zip(y_true, y_pred, strict=True)]
    mean = float(np.mean(raw)) if raw else 0.0
    return [r - mean + n * 1e-3 for n, r in enumerate(raw)]


@pytest.mark.parametrize("n", [1, 2, 8])
async def test_batch_reward_sees_the_whole_batch_whatever_the_sharding(n, tmp_path):
    xs, ys = make_data(24)
    program = await make_program()
    program.compile(reward=BatchRewardFunctionWrapper(fn=centred_reward),
                    optimizer=program.optimizer)
    local = await program.evaluate(xs, ys, verbose=False, return_predictions=True)
    ray_res = await program.evaluate(
        xs, ys, verbose=False, return_predictions=True,
        engine=RayEngine(num_evaluators=n, storage=str(tmp_path), run_name=f"b{n}"))
    local_values = [r.reward for r in local["predictions"]]
    assert [r.reward for r in ray_res["predictions"]] == local_values
    assert abs(sum(local_values) - sum(n * 1e-3 for n in range(24))) < 1e-9


async def test_ray_engine_reports_results_as_chunks_finish(tmp_path):
    xs, ys = make_data(24)
    program = await make_program(jitter_s=0.01, latency_seed=0)
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="progress",
                       chunk_size=4)
    data = to_dataset(xs, ys)
    state = program.get_state()
    chunks = []
    await engine.start(program, program.reward, {"eval": data})
    try:
        results = await engine.evaluate(
            [EvalRequest(candidate_id(state), state, tuple(data.ids), "eval")],
            on_results=lambda finished: chunks.append([r.example_id for r in finished]))
    finally:
        await engine.close()
    assert [r.example_id for r in results] == data.ids  # request order
    assert len(chunks) >= 6 and all(len(c) <= 4 for c in chunks)  # reported per chunk
    assert sorted(e for c in chunks for e in c) == sorted(data.ids)


class KillDuring(callbacks.Callback):
    """After generation `at`, schedule `action` a little later, while the next one runs."""

    def __init__(self, at, action, delay_s=0.05):
        super().__init__()
        self.at, self.action, self.delay_s = at, action, delay_s
        self.fired = False

    def on_batch_end(self, step, logs=None):
        if step == self.at and not self.fired:
            self.fired = True

            async def later():
                await asyncio.sleep(self.delay_s)
                self.action()

            asyncio.get_running_loop().create_task(later())


async def test_evaluator_killed_mid_generation(tmp_path):
    import ray

    reference = summary(*await fit(LocalEngine(), jitter_s=0.02))
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="kill-eval")
    kill = KillDuring(2, lambda: ray.kill(engine.evaluators[0], no_restart=False))
    result = summary(*await fit(engine, jitter_s=0.02, cbs=[kill]))
    assert kill.fired and result == reference


async def test_optimizer_actor_killed_and_restarted(tmp_path):
    import ray

    reference = summary(*await fit(LocalEngine()))
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="kill-opt")
    kill = KillDuring(3, lambda: ray.kill(engine.optimizer_actor, no_restart=False), 0.0)
    program, history = await fit(engine, cbs=[kill])
    assert kill.fired
    assert summary(program, history)[1:] == reference[1:]


async def test_worker_node_removed_mid_run(ray_cluster, tmp_path):
    reference = summary(*await fit(LocalEngine(), jitter_s=0.02))
    node = ray_cluster.worker_nodes_started.pop()
    engine = RayEngine(num_evaluators=4, storage=str(tmp_path), run_name="lose-node")
    remove = KillDuring(2, lambda: ray_cluster.remove_node(node))
    result = summary(*await fit(engine, jitter_s=0.02, cbs=[remove]))
    ray_cluster.worker_nodes_started.append(ray_cluster.add_node(num_cpus=1))
    assert remove.fired and result == reference


async def test_resume_after_the_driver_stops(tmp_path):
    """The driver dies mid-run (here: an exception); a new fit with resume=True finishes it."""
    reference = summary(*await fit(LocalEngine()))

    class Die(callbacks.Callback):
        def on_batch_end(self, step, logs=None):
            if step == 4:
                raise KeyboardInterrupt("driver killed")

    with pytest.raises(KeyboardInterrupt):
        await fit(RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="resume"),
                  cbs=[Die()])
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="resume")
    program, history = await fit(engine, resume=True)
    assert engine.remote_optimizer.status_snapshot["step"] > 4
    assert program.get_state() == reference[2]
    assert history.history["val_reward"][-1] == reference[1][-1]


async def test_new_run_refuses_an_existing_name_and_resume_needs_one(tmp_path):
    from synaray.errors import ConfigError

    await fit(RayEngine(num_evaluators=1, storage=str(tmp_path), run_name="taken"))
    with pytest.raises(ConfigError, match="already exists"):
        await fit(RayEngine(num_evaluators=1, storage=str(tmp_path), run_name="taken"))
    with pytest.raises(ConfigError, match="Nothing to resume"):
        await fit(RayEngine(num_evaluators=1, storage=str(tmp_path), run_name="new"),
                  resume=True)
