"""`RayEngine`: candidates evaluated in parallel by Ray actors (DESIGN §3)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
import zlib
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from synaray.engines.engine import Engine
from synaray.engines.evaluation import apply_batch_reward, is_batch_reward
from synaray.engines.ray.evaluator import EvaluatorActor, results_from_columns
from synaray.engines.ray.optimizer_actor import OptimizerActor, RemoteOptimizer
from synaray.engines.ray.rate_limiter import RateLimiterActor
from synaray.engines.ray.storage import RunStorage, redact_uri
from synaray.errors import ConfigError
from synaray.lm.model_search import shipped_keys
from synaray.lm.rate_limit import RateLimits
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.saving import serialize_object

__all__ = ["RayEngine"]

NAMESPACE = "synaray"


def shard_of(example_id: str, n: int) -> int:
    """The evaluator that holds an example: a stable hash, the same in every process."""
    return zlib.crc32(example_id.encode()) % n


#: synaray's own settings (never secrets) that a cluster this process starts gets through
#: the runtime env, so a value changed after the cluster started still reaches new actors.
#: Nothing else is copied: Ray writes the runtime env, values included, to its logs.
SETTINGS_VARS = ("SYNARAY_CACHE_DIR", "SYNARAY_GC_FREEZE", "SYNARAY_LOCAL_LM_API_BASE",
                 "SYNARAY_LOCAL_LM_THREADS", "LITELLM_LOCAL_MODEL_COST_MAP")


def _runtime_env(env_vars: list[str] | tuple[str, ...] = ()) -> dict:
    """For a cluster this process starts: workers see this process's import path.

    The cluster's processes are children of this one and inherit its environment (keys
    included) without it passing through Ray; the runtime env adds only the import path,
    synaray's non-secret settings (`SETTINGS_VARS`) and the variables named in `env_vars`
    (whose values then do reach Ray's logs: see `RayEngine`).
    """
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    env.update({k: os.environ[k] for k in (*SETTINGS_VARS, *env_vars) if k in os.environ})
    return {"env_vars": env}


def check_env_vars(env_vars: Any) -> tuple[str, ...]:
    """`env_vars` as a tuple of variable names, or a `ConfigError` naming the argument."""
    if env_vars is None:
        return ()
    if isinstance(env_vars, str) or not all(isinstance(v, str) and v.strip()
                                            for v in env_vars):
        raise ConfigError(f"Invalid value for argument `env_vars`. Received: {env_vars!r}. "
                          "Expected a list of environment variable names, such as "
                          "['OPENAI_API_KEY'].")
    return tuple(env_vars)


class RayEngine(Engine):
    """Evaluate candidates with Ray actors; host the optimizer in a checkpointed actor.

    Args:
        address: None starts a local Ray cluster (the embedded default); "auto" or
            "ray://host:port" / "host:port" joins an existing one.
        num_evaluators: evaluator actors; each holds a shard of every split.
        max_concurrency: LM calls in flight per evaluator (twice as many samples run, so
            parsing and rewards never hold an LM slot).
        storage: where run checkpoints go: a local folder or a pyarrow filesystem URI such
            as "s3://bucket/prefix" (default "./synaray_runs").
        run_name: the run's name under `storage` and its optimizer actor's name (default: the
            program's name plus a time stamp).
        rate_limits: per model `{"requests_per_minute": ..., "tokens_per_minute": ...}`,
            shared by all evaluators.
        max_inflight: evaluator calls in flight per evaluator at once.
        chunk_size: samples per evaluator call (results fold in as chunks finish).
        runtime_env: a Ray runtime environment. When this engine starts or joins the
            cluster it is the job's; when Ray is already initialized, its `env_vars` (for
            example storage credentials) are added to the job's for this engine's actors.
        env_vars: names of this process's environment variables to give the actors through
            the runtime env, for a cluster that does not have them itself (e.g.
            `["OPENAI_API_KEY"]`). Their values travel with the runtime env, which Ray
            writes to its logs (`runtime_env_agent.log`): prefer setting keys in the
            cluster's own environment. A cluster this engine starts inherits this
            process's environment anyway; keys of the program's models (`api_key`, or the
            value of `api_key_env` here) reach the actors in memory with each call.

    Example:
        >>> engine = RayEngine(num_evaluators=4, storage="runs/", run_name="demo")
        >>> engine.num_evaluators
        4
    """

    def __init__(self, address: str | None = None, num_evaluators: int = 2,
                 max_concurrency: int = 8, storage: str | None = None,
                 run_name: str | None = None,
                 rate_limits: dict[str, RateLimits | dict] | None = None,
                 max_inflight: int = 2, chunk_size: int = 32,
                 runtime_env: dict | None = None,
                 env_vars: list[str] | tuple[str, ...] | None = None) -> None:
        super().__init__()
        for arg, value in (("num_evaluators", num_evaluators),
                           ("max_concurrency", max_concurrency),
                           ("max_inflight", max_inflight), ("chunk_size", chunk_size)):
            if value < 1:
                raise ConfigError(f"Invalid value for argument `{arg}`. Received: {value}. "
                                  "Expected an integer >= 1.")
        self.address = address
        self.num_evaluators = num_evaluators
        self.max_concurrency = max_concurrency
        self.storage = storage or os.path.abspath("synaray_runs")
        self.run_name = run_name
        self.rate_limits = {m: (v if isinstance(v, RateLimits) else RateLimits(**v))
                            for m, v in (rate_limits or {}).items()}
        self.max_inflight = max_inflight
        self.chunk_size = chunk_size
        self.env_vars = check_env_vars(env_vars)
        missing = [name for name in self.env_vars if name not in os.environ]
        if missing:
            raise ConfigError(f"Invalid value for argument `env_vars`: {missing} not set in "
                              "this process's environment.")
        self.runtime_env = runtime_env
        self._started_ray = False
        self._keys: list = []
        self.evaluators: list[Any] = []
        self.optimizer_actor: Any = None

    # --- cluster ----------------------------------------------------------------------
    def _init_ray(self) -> None:
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": True}
        if self.address is None and os.environ.get("RAY_ADDRESS"):
            # inside `ray job submit` (or with RAY_ADDRESS set): the job's cluster
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
        elif self.address is None:
            # "local" always starts a new cluster; a bare ray.init() would join any cluster
            # found running on this machine (`ray start`, another program's).
            kwargs["address"] = "local"
            kwargs["runtime_env"] = self.runtime_env or _runtime_env()
            kwargs["include_dashboard"] = False
        else:
            kwargs["address"] = self.address
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
        if self.env_vars:
            env = kwargs.get("runtime_env") or {}
            kwargs["runtime_env"] = {**env, "env_vars": {**(env.get("env_vars") or {}),
                                                         **self._named_env()}}
        ray.init(**kwargs)
        self._started_ray = True

    def _named_env(self) -> dict[str, str]:
        return {name: os.environ[name] for name in self.env_vars if name in os.environ}

    def _actor_runtime_env(self) -> dict | None:
        """The runtime env of this engine's actors: None (the job's) unless Ray was
        initialized by someone else and this engine was given one (or `env_vars`)."""
        if (not self.runtime_env and not self.env_vars) or self._started_ray:
            return None
        own = self.runtime_env or {}
        job = dict(ray.get_runtime_context().runtime_env or {})
        env = {**(job.get("env_vars") or {}), **(own.get("env_vars") or {}),
               **self._named_env()}
        return {**job, **own, "env_vars": env}

    async def _start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        self._init_ray()
        self._actor_env = self._actor_runtime_env()
        self.run_name = self.run_name or f"{program.name}-{time.strftime('%Y%m%d-%H%M%S')}-" \
                                         f"{uuid.uuid4().hex[:6]}"
        self.reward = reward
        self.datasets = datasets
        self.payload = program.to_payload()
        # Keys of the models actors call, sent with each call (held in memory, never in the
        # payload, the runtime env or a file): see `synaray.lm.keys`.
        self._keys = shipped_keys([program, reward, getattr(program, "optimizer", None)])
        self.metrics = list(getattr(program, "metrics", None) or [])
        limiter = limiter_name = None
        if self.rate_limits:
            limiter_name = f"synaray-ratelimit-{self.run_name}"
            limiter = ray.remote(RateLimiterActor).options(
                name=limiter_name, namespace=NAMESPACE, num_cpus=0,
                max_restarts=-1, max_task_retries=-1, get_if_exists=True,
                runtime_env=self._actor_env,
            ).remote({m: v.model_dump() for m, v in self.rate_limits.items()})
        self.rate_limiter = limiter
        reward_config = serialize_object(reward)
        payload_ref = ray.put(self.payload)
        # Per evaluator, what each call brings along (nested refs, fetched by the actor on its
        # first call, again after a restart); held here for the engine's whole life.
        self._evaluator_data: list[list] = []
        self.evaluators = []
        for index in range(self.num_evaluators):
            shards = {split: ray.put(ds.to_arrow([i for i in ds.ids
                                                   if shard_of(i, self.num_evaluators) == index]))
                      for split, ds in datasets.items()}
            self._evaluator_data.append([payload_ref, shards])
            actor = ray.remote(EvaluatorActor).options(
                name=f"synaray-evaluator-{self.run_name}-{index}", namespace=NAMESPACE,
                num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000,
                scheduling_strategy="SPREAD", runtime_env=self._actor_env,
            ).remote(index, reward_config, self.max_concurrency, limiter_name)
            self.evaluators.append(actor)
        await asyncio.gather(*(a.ready.remote(data, keys=self._keys) for a, data in zip(
            self.evaluators, self._evaluator_data, strict=True)))

    # --- evaluation -------------------------------------------------------------------
    def _calls(self, requests: list[EvalRequest]) -> list[tuple[int, list[tuple]]]:
        """Per evaluator, chunks of sub-requests of at most `chunk_size` samples."""
        per_evaluator: dict[int, list[tuple]] = {}
        for r in requests:
            groups: dict[int, list[str]] = {}
            for eid in r.example_ids:
                groups.setdefault(shard_of(eid, self.num_evaluators), []).append(eid)
            for index, ids in groups.items():
                for start in range(0, len(ids), self.chunk_size):
                    per_evaluator.setdefault(index, []).append(
                        (r.candidate_id, r.state, tuple(ids[start:start + self.chunk_size]),
                         r.split))
        calls = []
        for index, subs in per_evaluator.items():
            chunk: list[tuple] = []
            size = 0
            for sub in subs:
                if chunk and size + len(sub[2]) > self.chunk_size:
                    calls.append((index, chunk))
                    chunk, size = [], 0
                chunk.append(sub)
                size += len(sub[2])
            if chunk:
                calls.append((index, chunk))
        return calls

    async def _dispatch(self, calls: list[tuple[int, list[tuple]]]) -> list[EvalResult]:
        """Keep at most `max_inflight` calls per evaluator running; fold results as they come."""
        queues: dict[int, list[list[tuple]]] = {}
        for index, chunk in calls:
            queues.setdefault(index, []).append(chunk)
        results: list[EvalResult] = []
        running: dict[asyncio.Future, int] = {}

        splits = tuple(sorted(self.metric_splits))

        def launch(index: int) -> None:
            if queues.get(index):
                ref = self.evaluators[index].evaluate.remote(
                    queues[index].pop(0), self._evaluator_data[index], metric_splits=splits,
                    keys=self._keys)
                running[asyncio.ensure_future(_await_ref(ref))] = index

        for index in list(queues):
            for _ in range(self.max_inflight):
                launch(index)
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                columns = future.result()
                finished = results_from_columns(columns)
                results.extend(finished)
                self._report(finished)
                self._fold_metric_states(columns.get("metric_states") or [])
                launch(index)
        return results

    async def _evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        folded = {(r.candidate_id, r.split, r.example_id): r
                  for r in await self._dispatch(self._calls(requests))}
        ordered = []
        for request in requests:
            batch = [folded[(request.candidate_id, request.split, e)]
                     for e in request.example_ids]
            if is_batch_reward(self.reward) and batch:
                await self._batch_reward(request, batch)
            ordered.extend(batch)
        return ordered

    async def _batch_reward(self, request: EvalRequest, batch: list[EvalResult]) -> None:
        from synaray.data.data_model import JsonDataModel

        dataset = self.datasets[request.split]
        y_true = [y for _, y in dataset.fetch(list(request.example_ids))]
        schema = self.payload["config"].get("outputs") and None
        y_pred = [None if r.y_pred is None else JsonDataModel(json=r.y_pred, schema=schema)
                  for r in batch]
        await apply_batch_reward(self.reward, batch, y_true, y_pred)

    # --- optimizer --------------------------------------------------------------------
    async def host_optimizer(self, optimizer: Any, initial_state: dict, train: Any, val: Any,
                             batch_size: int, epochs: int, saved: dict | None = None,
                             resume: bool = False) -> Any:
        store = RunStorage(self.storage, self.run_name)
        name = f"synaray-optimizer-{self.run_name}"
        existing = _find_actor(name)
        # One writer per run name: a live optimizer actor holds the run's lease; otherwise
        # take it here (or use the one `run_fit` took) and hand it to the new actor.
        lease = None if existing is not None else _take_lease(store, name)
        try:
            if not resume and (store.has_checkpoint() or existing is not None):
                raise ConfigError(f"Run {self.run_name!r} already exists in "
                                  f"{redact_uri(self.storage)}; pass "
                                  "resume=True to continue it, or choose another run_name.")
            if resume and not store.has_checkpoint() and existing is None:
                raise ConfigError(f"Nothing to resume: no checkpoint of run "
                                  f"{self.run_name!r} in {redact_uri(self.storage)}.")
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        if not store.exists("data/train.parquet"):
            store.write_table("data/train.parquet", train.to_arrow())
            if val is not None:
                store.write_table("data/val.parquet", val.to_arrow())
        setup = {"initial_state": initial_state, "batch_size": batch_size, "epochs": epochs}
        # Prefer this (the driver's, usually the head) node; anywhere if it is gone.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        self.optimizer_actor = existing or ray.remote(OptimizerActor).options(
            name=name, namespace=NAMESPACE, lifetime="detached", num_cpus=0,
            max_restarts=-1, max_task_retries=-1, max_concurrency=4, scheduling_strategy=here,
            runtime_env=getattr(self, "_actor_env", None),
        ).remote(serialize_object(optimizer), self.payload, self.storage, self.run_name, setup,
                 lease_token=lease.hand_over() if lease is not None else None)
        status = await self.optimizer_actor.status.remote()
        self.remote_optimizer = RemoteOptimizer(self.optimizer_actor, status, keys=self._keys)
        return self.remote_optimizer

    @property
    def best_program_uri(self) -> str:
        return RunStorage(self.storage, self.run_name).uri("best_program.json")

    async def _close(self) -> None:
        for actor in self.evaluators:
            ray.kill(actor, no_restart=True)
        self.evaluators = []
        self._evaluator_data = []
        if self.rate_limiter is not None:
            ray.kill(self.rate_limiter, no_restart=True)
        finished = getattr(self, "remote_optimizer", None)
        if self.optimizer_actor is not None and finished is not None and finished.finished:
            try:  # the run name is free at once (else its lease expires)
                ray.get(self.optimizer_actor.release_lease.remote(), timeout=10)
            except Exception:  # the actor is gone already
                pass
            ray.kill(self.optimizer_actor, no_restart=True)
        if self._started_ray:
            ray.shutdown()

    def __repr__(self) -> str:
        return (f"<RayEngine evaluators={self.num_evaluators} run={self.run_name} "
                f"state={self.state.value}>")


async def _await_ref(ref: Any) -> Any:
    return await ref


def _take_lease(store: RunStorage, actor_name: str) -> Any:
    """The run's lease for a new optimizer actor: the one this process holds (`run_fit`
    takes it before writing anything), else taken now. A lease held by this run's optimizer
    actor in this cluster, which is gone, is taken over without waiting for it to expire."""
    from synaray.engines.ray.run_lease import held_lease

    cluster = str(ray.get_runtime_context().gcs_address)

    def actor_gone(record: dict) -> bool:
        owner = record.get("owner") or {}
        return (owner.get("kind") == "optimizer actor" and owner.get("cluster") == cluster
                and _find_actor(actor_name) is None)

    return held_lease(store) or store.acquire_lease(holder_gone=actor_gone).start_heartbeat()


def _find_actor(name: str) -> Any:
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
