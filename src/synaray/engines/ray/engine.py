"""`RayEngine`: candidates evaluated in parallel by Ray actors (DESIGN §3)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from synaray.engines.engine import Engine
from synaray.engines.ray.dispatch import EvaluatorPool, evaluator_name, shard_of
from synaray.engines.ray.optimizer_actor import OptimizerActor
from synaray.errors import ConfigError, EngineError
from synaray.lm.model_search import shipped_keys
from synaray.lm.rate_limit import RateLimits
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.runs.checkpoint import load_checkpoint
from synaray.runs.files import BEST_PROGRAM
from synaray.runs.naming import claim_run, new_run_name
from synaray.runs.ray_connect import NAMESPACE, actor_runtime_env, connect
from synaray.runs.snapshot import has_snapshot, write_snapshot
from synaray.runs.storage import RunStorage
from synaray.saving import serialize_object
from synaray.trainers.events import CallbackEvents, OptimizerView
from synaray.trainers.search_loop import TERMINAL_KINDS, SearchSpec

__all__ = ["NAMESPACE", "RayEngine", "shard_of"]


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

    prefers_steady_state = True

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
        self._given_run_name = run_name
        self._pool = None
        self._pool_lock: asyncio.Lock | None = None
        self.remote_optimizer: OptimizerView | None = None
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
        #: With `detach`, a fit returns once its search started on the cluster (follow it
        #: with `synaray status RUN --watch`); its History is then empty.
        self.detach = False
        self._started_ray = False
        self._keys: list = []
        self.optimizer_actor: Any = None

    # --- cluster ----------------------------------------------------------------------
    def _init_ray(self) -> None:
        # the one way to connect (synaray.runs.ray_connect): a new local cluster, the job's
        # under `ray job submit`, or `address`; runtime env rules explained there
        self._started_ray = connect(self.address, self.runtime_env, self.env_vars) \
            or self._started_ray

    def _actor_runtime_env(self) -> dict | None:
        """The runtime env of this engine's actors: None (the job's) unless Ray was
        initialized by someone else and this engine was given one (or `env_vars`)."""
        return actor_runtime_env(self.runtime_env, self.env_vars, self._started_ray)

    async def _start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        self._init_ray()
        self._actor_env = self._actor_runtime_env()
        # A name per fit or evaluation unless one was given (the engine is reusable).
        self.run_name = self._given_run_name or new_run_name(program.name)
        self.reward = reward
        self.datasets = datasets
        self.payload = program.to_payload()
        # Keys of the models actors call, sent with each call (held in memory, never in the
        # payload, the runtime env or a file): see `synaray.lm.keys`.
        self._keys = shipped_keys([program, reward, getattr(program, "optimizer", None)])
        self.metrics = list(getattr(program, "metrics", None) or [])
        self._pool: EvaluatorPool | None = None
        self._pool_lock: asyncio.Lock | None = None
        self.optimizer_actor = None
        self.remote_optimizer = None

    def _pool_settings(self) -> dict:
        return {"num_evaluators": self.num_evaluators, "max_concurrency": self.max_concurrency,
                "max_inflight": self.max_inflight, "chunk_size": self.chunk_size,
                "rate_limits": {m: v.model_dump() for m, v in self.rate_limits.items()},
                "runtime_env": self._actor_env}

    @property
    def evaluators(self) -> list[Any]:
        """The run's evaluator actors: this engine's own (an evaluation), else those the
        optimizer actor of the current fit created (found by name)."""
        if self._pool is not None:
            return list(self._pool.evaluators)
        if self.optimizer_actor is None or not self.run_name:
            return []
        return [a for a in (_find_actor(evaluator_name(self.run_name, i))
                            for i in range(self.num_evaluators)) if a is not None]

    # --- evaluation -------------------------------------------------------------------
    async def _evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        pool = await self._evaluation_pool()
        results, states = await pool.evaluate_with_states(requests, self._report)
        # this call's own metric states (concurrent evaluate calls each keep theirs)
        self._fold_metric_states([(cid, split, part) for (cid, split), part in states.items()])
        return results

    async def _evaluation_pool(self) -> EvaluatorPool:
        """This engine's evaluators for `evaluate` (made once, even by concurrent calls),
        named apart from a fit's evaluators (same run name)."""
        if self._pool_lock is None:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:
            if self._pool is None:
                pool = EvaluatorPool(f"{self.run_name}-eval", self.payload, self.reward,
                                     self.datasets, self._pool_settings(),
                                     metric_splits=tuple(self.metric_splits),
                                     metrics=self.metrics, keys=self._keys)
                await pool.start()
                self._pool = pool
        return self._pool

    # --- optimizer --------------------------------------------------------------------
    async def host_optimizer(self, optimizer: Any, initial_state: dict, train: Any, val: Any,
                             batch_size: int, epochs: int, saved: dict | None = None,
                             resume: bool = False) -> OptimizerView:
        """Create (or find) the run's optimizer actor; the returned `OptimizerView` mirrors
        it from the events `run_search` follows."""
        store = RunStorage(self.storage, self.run_name)
        name = f"synaray-optimizer-{self.run_name}"
        existing = _find_actor(name)
        # One writer per run name: a live optimizer actor holds the run's lease; otherwise
        # take it here (or use the one `run_fit` took) and hand it to the new actor.
        lease = claim_run(store, resume=resume, live=existing is not None, use_held=True,
                          holder_gone=_actor_gone(name))
        if lease is not None:
            lease.start_heartbeat()
        if not has_snapshot(store):  # a restart or a resume keeps the run's own copy
            write_snapshot(store, train=train, val=val)
        setup = {"initial_state": initial_state, "batch_size": batch_size, "epochs": epochs}
        evaluators = {**self._pool_settings(), "reward": serialize_object(self.reward)}
        # Prefer this (the driver's, usually the head) node; anywhere if it is gone.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        self.optimizer_actor = existing or ray.remote(OptimizerActor).options(
            name=name, namespace=NAMESPACE, lifetime="detached", num_cpus=0,
            max_restarts=-1, max_task_retries=-1, max_concurrency=16, scheduling_strategy=here,
            runtime_env=getattr(self, "_actor_env", None),
        ).remote(serialize_object(optimizer), self.payload, self.storage, self.run_name, setup,
                 lease_token=lease.hand_over() if lease is not None else None,
                 evaluators=evaluators)
        status = await self.optimizer_actor.status.remote()
        self.remote_optimizer = OptimizerView(status, state_dict=self._stored_state)
        return self.remote_optimizer

    def _stored_state(self) -> dict:
        saved = load_checkpoint(RunStorage(self.storage, self.run_name))
        return saved.optimizer if saved is not None else {}

    async def start_search(self, search: SearchSpec) -> int:
        """Start the fit's search in its optimizer actor; returns the event index to follow
        from. The run then goes on without this process (`detach`)."""
        if self.optimizer_actor is None:
            raise EngineError("start_search() needs host_optimizer() first.")
        return await self.optimizer_actor.start_search.remote(search.to_dict(),
                                                              keys=self._keys)

    async def run_search(self, optimizer: Any, search: SearchSpec, events: Any) -> None:
        """Start the search in the optimizer actor and follow its events to the end.

        Nothing but events (small JSON: logs, counts, the best candidate) reaches this
        process; the evaluators' results go to the actor. If this process dies, the run
        goes on; the actor restarts the search by itself after its own restart.
        """
        since = await self.start_search(search)
        if self.detach:
            return
        actor = self.optimizer_actor
        if isinstance(events, CallbackEvents):
            events.request_stop = lambda: actor.request_stop.remote()
        progress: dict = {}
        while True:
            out = await actor.follow.remote(since, 2.0)
            ended = False
            for event in out["events"]:
                since = event["seq"] + 1
                events(event)
                ended = event["kind"] in TERMINAL_KINDS
            if ended:
                return
            if out["progress"] and out["progress"] != progress:
                progress = out["progress"]
                events({"kind": "progress", "logs": dict(progress)})
            if not out["running"] and not out["events"]:
                # the actor restarted and has not started again yet: ask it to
                since = min(since, await actor.start_search.remote(None, keys=self._keys))

    async def stop_search(self, state: str, reason: str) -> None:
        if self.optimizer_actor is None:
            return
        try:
            await asyncio.wait_for(_await_ref(self.optimizer_actor.stop_search.remote(
                state, reason)), timeout=30)
        except Exception:  # the actor or the cluster is gone: status.json goes stale
            pass

    @property
    def best_program_uri(self) -> str:
        return RunStorage(self.storage, self.run_name).uri(BEST_PROGRAM)

    async def _finish(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        view = self.remote_optimizer
        if self.optimizer_actor is not None and view is not None and view.finished:
            try:  # the run name is free at once (else its lease expires)
                await asyncio.wait_for(_await_ref(self.optimizer_actor.release_lease.remote()),
                                       timeout=10)
            except Exception:  # the actor is gone already
                pass
            ray.kill(self.optimizer_actor, no_restart=True)

    async def _close(self) -> None:
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __repr__(self) -> str:
        return (f"<RayEngine evaluators={self.num_evaluators} run={self.run_name} "
                f"state={self.state.value}>")


async def _await_ref(ref: Any) -> Any:
    return await ref


def _actor_gone(actor_name: str) -> Any:
    """`holder_gone` for the run's lease: a lease held by this run's optimizer actor in this
    cluster, which is gone, is taken over without waiting for it to expire."""
    cluster = str(ray.get_runtime_context().gcs_address)

    def actor_gone(record: dict) -> bool:
        owner = record.get("owner") or {}
        return (owner.get("kind") == "optimizer actor" and owner.get("cluster") == cluster
                and _find_actor(actor_name) is None)

    return actor_gone


def _find_actor(name: str) -> Any:
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
