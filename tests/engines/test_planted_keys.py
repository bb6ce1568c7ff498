"""Planted keys: sent on every request from every evaluator, written to no file at all.

A driver process (a subprocess with its own `RAY_TMPDIR`, which starts its own Ray
cluster as a user's command does) runs two Ray fits with 2 evaluators each, checkpoints and
MLflow tracking (sqlite store, local artifacts); then `synaray report` runs:

1. `run_fit` of a run config whose model names its key with `model.api_key_env`
   (`SYNARAY_TEST_SECRET`), while a `LITELLM_*` variable holds another secret;
2. `program.fit` with a literal `LanguageModel(api_key=...)` on a `RayEngine`,

both in one cluster started as `synaray fit` starts one (a task there checks that it
inherited the driver's environment: the key was not in the runtime env).

A loopback OpenAI-compatible stub records each request's `Authorization` header. Every
request of each model carries its configured key; requests for examples of both evaluators'
shards arrive (an evaluator scores only its own shard). Then every file written (the run
folders, the MLflow store, the report, and each Ray session's directory, logs included,
under the driver's `RAY_TMPDIR`) is searched for the three secret values: zero hits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from helpers.openai_stub import OpenAIStub
from helpers.stub_programs import stub_config, thirds_reply
from synaray.engines.ray.engine import shard_of

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ENV_SECRET = "sk-planted-env-7Qd2XvLm"
LITELLM_SECRET = "sk-planted-litellm-9Kp4WzRt"
LITERAL_SECRET = "sk-planted-literal-3Hn8BcYe"
SECRETS = (ENV_SECRET, LITELLM_SECRET, LITERAL_SECRET)
REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent('''
    import asyncio, hashlib, os, pathlib, sys
    import ray
    import synaray
    from synaray.config import load_run_config, run_fit
    from synaray.data.datasets import Dataset
    from synaray.engines.ray import RayEngine
    from synaray.runs.ray_connect import NAMESPACE, worker_runtime_env
    from helpers.fit_programs import Label, Number
    from helpers.stub_programs import build_thirds_on

    work, api_base = sys.argv[1], sys.argv[2]
    pathlib.Path(f"{work}/mlflow").mkdir()
    # sqlite store; artifacts go to ./mlruns, under the working dir `work` too
    synaray.enable_observability(f"sqlite:///{work}/mlflow/mlflow.db", "planted")

    # One cluster for both fits (a busy machine starts clusters slowly), started as
    # `synaray fit` starts one (config.sessions.ray_session): its workers inherit the
    # driver's environment, the runtime env carries no key.
    for attempt in range(3):  # Ray gives a new node 30 s to register: too short under load
        try:
            ray.init(address="local", namespace=NAMESPACE, runtime_env=worker_runtime_env(),
                     include_dashboard=False)
            break
        except Exception as exc:
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
            ray.shutdown()

    def digest():
        return hashlib.sha256(os.environ.get("SYNARAY_TEST_SECRET", "").encode()).hexdigest()

    print("INHERITED", ray.get(ray.remote(digest).remote()) == digest(), flush=True)

    outcome = run_fit(load_run_config(f"{work}/run.yaml"), verbose=False)
    print("RUN1", outcome.lm_calls, outcome.lm_failures, flush=True)

    async def literal_fit():
        lm = synaray.LanguageModel("openai/literal", api_base=api_base, cache=False,
                                   retries=0, api_key="__LITERAL_KEY__")
        program = await build_thirds_on(lm)
        program.compile(reward="exact_match", metrics=["accuracy"],
                        optimizer=synaray.optimizers.RandomFewShot(population_size=2,
                                                                   nb_min_examples=2))
        ids = [f"n{n}" for n in range(12)]
        xs = [Number(q=str(n)) for n in range(12)]
        ys = [Label(answer="no" if n % 3 == 0 else "yes") for n in range(12)]
        engine = RayEngine(num_evaluators=2, storage=f"{work}/runs", run_name="literal")
        await program.fit(Dataset(ids, xs, ys), epochs=1, batch_size=6, engine=engine,
                          verbose=False)
        program.save(f"{work}/literal_program.json")

    asyncio.run(literal_fit())
    ray.shutdown()
    print("RUN2 done", flush=True)
''').replace("__LITERAL_KEY__", LITERAL_SECRET)


def _shards(stub: OpenAIStub, model: str) -> tuple[set, dict]:
    """Shards whose examples reached the stub for `model`, and the keys those requests
    carried (the preflight's one-token request aside)."""
    shards, keys = set(), {}
    for body, auth in zip(stub.requests, stub.authorizations, strict=True):
        # litellm sends the model name without its provider prefix ("openai/")
        if body.get("model") != model.split("/", 1)[1] or body.get("max_tokens") == 1:
            continue
        q = json.loads(body["messages"][-1]["content"])["q"]
        shards.add(shard_of(f"n{q}", 2))
        keys[auth] = keys.get(auth, 0) + 1
    return shards, keys


def _hits(root: Path) -> list[str]:
    """Files under `root` holding any secret (bytes, so binary logs are searched too)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:  # a socket or a file removed while walking
                continue
            found.extend(f"{path}: {s}" for s in SECRETS if s.encode() in data)
    return found


def test_planted_keys_are_sent_everywhere_and_written_nowhere():
    pytest.importorskip("mlflow")
    # short: Ray's unix sockets live under RAY_TMPDIR (path length limit)
    work = Path(tempfile.mkdtemp(prefix="srk-", dir="/tmp"))
    scripts = Path(tempfile.mkdtemp(prefix="srk-script-"))
    try:
        with OpenAIStub(handler=thirds_reply) as stub:
            config = stub_config(work, {"model": "openai/envkey", "api_base": stub.api_base,
                                        "api_key_env": "SYNARAY_TEST_SECRET"},
                                 engine="ray", run_name="envkey")
            config["engine"]["num_evaluators"] = 2
            (work / "run.yaml").write_text(yaml.safe_dump(config))
            env = {**os.environ, "SYNARAY_TEST_SECRET": ENV_SECRET,
                   "LITELLM_PLANTED_KEY": LITELLM_SECRET, "RAY_TMPDIR": str(work / "ray"),
                   "SYNARAY_PREFLIGHT": "1",
                   "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
            env.pop("RAY_ADDRESS", None)
            started = time.monotonic()
            script = scripts / "driver.py"  # holds the literal key: kept outside `work`
            script.write_text(DRIVER)
            proc = subprocess.run([sys.executable, str(script), str(work), stub.api_base],
                                  env=env, cwd=work, capture_output=True, text=True,
                                  timeout=540)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert "INHERITED True" in proc.stdout  # a local cluster inherits the env
            report = subprocess.run(
                [sys.executable, "-c", "import sys; from synaray.cli.main import main; "
                 "sys.exit(main())", "report", "envkey", "--storage",
                 str(work / "runs"), "--out", str(work / "report.html")],
                env=env, cwd=work, capture_output=True, text=True, timeout=120)
            assert (work / "report.html").is_file(), report.stderr[-2000:]
        env_shards, env_keys = _shards(stub, "openai/envkey")
        literal_shards, literal_keys = _shards(stub, "openai/literal")
        # every request of each model carried its key; both evaluators' shards were asked
        assert env_keys and set(env_keys) == {f"Bearer {ENV_SECRET}"}
        assert literal_keys and set(literal_keys) == {f"Bearer {LITERAL_SECRET}"}
        assert env_shards == literal_shards == {0, 1}
        # the preflight (driver) sent one small request per model, with the key too
        checks = [a for b, a in zip(stub.requests, stub.authorizations, strict=True)
                  if b.get("max_tokens") == 1]
        assert checks and set(checks) <= {f"Bearer {ENV_SECRET}", f"Bearer {LITERAL_SECRET}"}
        sessions = list((work / "ray").rglob("session_2*"))
        assert sessions, "no Ray session directory under RAY_TMPDIR"
        assert list((work / "ray").rglob("runtime_env_agent.log"))  # Ray's logs were kept
        assert (work / "mlflow" / "mlflow.db").is_file() and (work / "runs" / "envkey").is_dir()
        assert list((work / "mlruns").rglob("best_program.json"))  # MLflow artifacts
        assert (work / "runs" / "literal" / "best_program.json").is_file()
        assert _hits(work) == [], "secrets written to files"
        print(f"planted-key run: {time.monotonic() - started:.0f} s, "
              f"{sum(env_keys.values())} + {sum(literal_keys.values())} requests")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scripts, ignore_errors=True)
