"""RayEngine checkpoints on S3: a moto server on loopback stands in for the object store.

The run storage is `s3://bucket/prefix?endpoint_override=127.0.0.1:PORT&scheme=http&...`
(pyarrow's `FileSystem.from_uri` reads the endpoint from the query). The dummy credentials
are in this process's environment (the driver writes the run's data) and reach the actors
through `RayEngine(runtime_env={"env_vars": ...})`, since the session's cluster was started
before they were set.
"""

from __future__ import annotations

import pytest

import synaray
from helpers.s3_server import AWS_ENV, moto_s3
from synaray import callbacks
from synaray.engines import LocalEngine
from synaray.engines.ray import RayEngine
from synaray.runs.storage import RunStorage, redact_uri
from trainers.conftest import make_data, make_program

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]

BUCKET = "synaray-runs"
FIT = dict(epochs=2, batch_size=6, validation_split=0.25, verbose=False)
@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server with an empty bucket; yields (storage URI, boto3 client)."""
    with moto_s3(BUCKET, monkeypatch) as server:
        yield server.uri("runs"), server.client


def keys(client, prefix: str) -> set[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for item in listing.get("Contents", [])}


def engine(storage: str, run_name: str) -> RayEngine:
    return RayEngine(num_evaluators=2, storage=storage, run_name=run_name,
                     runtime_env={"env_vars": dict(AWS_ENV)})


async def fit(engine, cbs=None, resume=False):
    xs, ys = make_data(36)
    program = await make_program(seed=7)
    history = await program.fit(xs, ys, engine=engine, callbacks=cbs, resume=resume, **FIT)
    return program, history


async def test_checkpoints_land_in_s3_and_a_killed_run_resumes_from_them(s3):
    """Driver and optimizer actor both die; a new fit with resume=True reads S3 and finishes
    with the uninterrupted run's result; its files are in the bucket and load back.

    (One test: each Ray fit on S3 costs seconds of CI, and the resumed run's checkpoints are
    the ones a finished run leaves.)"""
    import ray

    storage, client = s3
    reference, reference_history = await fit(LocalEngine())

    class Die(callbacks.Callback):
        def on_batch_end(self, step, logs=None):
            if step == 4:
                raise KeyboardInterrupt("driver killed")

    first = engine(storage, "s3-resume")
    with pytest.raises(KeyboardInterrupt):
        await fit(first, cbs=[Die()])
    ray.kill(first.optimizer_actor, no_restart=True)  # only the S3 checkpoint remains
    saved_step = RunStorage(storage, "s3-resume").read_json("manifest.json")["step"]
    assert saved_step >= 4

    run = engine(storage, "s3-resume")
    program, history = await fit(run, resume=True)
    status = run.remote_optimizer.status_snapshot
    assert status["restored"] and status["step"] > saved_step
    assert program.get_state() == reference.get_state()
    assert history.history["val_reward"][-1] == reference_history.history["val_reward"][-1]

    files = keys(client, "runs/s3-resume/")
    for name in ("best_program.json", "optimizer_state.json", "manifest.json", "status.json",
                 "data/train.parquet", "data/val.parquet"):
        assert f"runs/s3-resume/{name}" in files
    assert not [k for k in files if k.endswith(".tmp")]
    assert run.best_program_uri.startswith(f"s3://{BUCKET}/runs/s3-resume/best_program.json?")
    loaded = synaray.Program.load(run.best_program_uri)
    assert loaded.get_state() == program.get_state()
    manifest = RunStorage(storage, "s3-resume").read_json("manifest.json")
    assert manifest["step"] == status["step"]


def test_credentials_never_show_in_messages():
    assert redact_uri("s3://AKIA:secret@bucket/runs?region=x") == "s3://***@bucket/runs?region=x"
    assert redact_uri("s3://bucket/runs") == "s3://bucket/runs"
