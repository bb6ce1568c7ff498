"""`OptimizerActor`: owns a run on RayEngine: the optimizer, the evaluators, the loop.

Named per run and detached, so it outlives its driver, and restartable: `__init__` reloads
the last checkpoint from run storage (data included). It runs the same `SearchLoop` as
LocalEngine: it creates the run's evaluator actors (`EvaluatorPool`, detached too, so they
do not die with the driver), sends them the requests itself, reduces a `BatchReward` over
each whole request, tells the optimizer, evaluates the stop conditions and checkpoints.
No result passes through the driver: the driver starts the search (`start_search`) and
follows its events (`follow`), which feed the driver-side callbacks.

Events are stored in the run folder (`events.json`) before each checkpoint; a restarted
actor keeps those up to its checkpoint step, and, when the search was running and the run
stored its search settings (`search.json`), starts it again by itself: no driver needed.

The actor holds the run's lease (`synaray.runs.lease`, handed over by the driver
with `lease_token`): it renews it while it lives (a restart adopts it again), refuses to
checkpoint once another run took it over, and releases it when the run is over.

API keys: the driver sends the keys of the program's models with `start_search` (kept in
memory, never written); an actor restarted without a driver has only the keys of the
cluster's own environment.
"""

from __future__ import annotations

import asyncio
import time

from synaray.lm.keys import install_keys
from synaray.runs.checkpoint import Checkpointer, load_checkpoint
from synaray.runs.files import EVENTS_FILE, SEARCH_FILE
from synaray.runs.lease import RunLease
from synaray.runs.snapshot import read_snapshot
from synaray.runs.storage import RunStorage
from synaray.saving import deserialize_object
from synaray.trainers.search_loop import TERMINAL_KINDS, SearchLoop, events_up_to

__all__ = ["EVENTS_FILE", "SEARCH_FILE", "OptimizerActor"]

#: Seconds a finished run's actor waits for a follower before it ends itself.
LINGER_S = 120.0


class OptimizerActor:
    """Hosts a run's optimizer and runs its search; checkpoints after every step.

    Args:
        optimizer_config: the optimizer (`serialize_object`).
        program_payload: the program (`Program.to_payload()`).
        storage, run_name: the run's folder.
        setup: initial_state, batch_size, epochs (a new run).
        lease_token: the run's lease, handed over by the driver.
        evaluators: the evaluator pool's settings (see `EvaluatorPool`) and the reward's
            config under "reward".
    """

    def __init__(self, optimizer_config: dict, program_payload: dict, storage: str,
                 run_name: str, setup: dict, lease_token: str | None = None,
                 evaluators: dict | None = None) -> None:
        self.store = RunStorage(storage, run_name)
        self.lease = (RunLease.adopt(self.store, lease_token).start_heartbeat()
                      if lease_token else None)
        self.optimizer = deserialize_object(optimizer_config)
        self.payload = program_payload
        data = read_snapshot(self.store)
        # the one checkpointer (synaray.runs.checkpoint); a restart keeps the first start time
        self.checkpointer = Checkpointer(self.store, program_payload, lease=self.lease)
        saved = load_checkpoint(self.store) if self.store.has_checkpoint() else None
        if saved is not None:
            self.optimizer.load_state_dict(saved.optimizer, data.train, data.val)
            self.step = saved.step
            self.restored = True
        else:
            self.optimizer.setup(setup["initial_state"], data.train, data.val,
                                 batch_size=setup["batch_size"], epochs=setup["epochs"])
            self.step = 0
            self.restored = False
            self._checkpoint()
        self.train, self.val = data.train, data.val
        self.pool_settings = dict(evaluators or {})
        self.events: list[dict] = []
        if self.store.exists(EVENTS_FILE):
            self.events = events_up_to(self.store.read_json(EVENTS_FILE).get("events", []),
                                       self.step)
        self.spec: dict | None = (self.store.read_json(SEARCH_FILE)
                                  if self.store.exists(SEARCH_FILE) else None)
        self.progress: dict = {}
        self.loop: SearchLoop | None = None
        self._task: asyncio.Task | None = None
        self._changed: asyncio.Event | None = None
        self._keys: list = []
        self._last_follow = time.monotonic()
        if (self.restored and self.spec is not None and not self.optimizer.finished
                and self.events and self.events[-1]["kind"] not in TERMINAL_KINDS):
            # A restart mid-search (the actor or its node died): go on without a driver.
            import ray

            ray.get_runtime_context().current_actor.start_search.remote(None)

    # --- the search -------------------------------------------------------------------
    async def start_search(self, spec: dict | None, keys: list | None = None) -> int:
        """Start the search (or join the running one); returns the index of the first event
        of this search session, to `follow` from. Idempotent (Ray may retry it)."""
        install_keys(keys)
        if keys is not None:
            self._keys = list(keys)
            if self.loop is not None:
                self._pool_keys(self._keys)
        if spec is not None:
            self.spec = spec
            self.store.write_json(SEARCH_FILE, spec)
        if self.spec is None:
            return len(self.events)
        if self._task is not None and not self._task.done():
            return self._session_start()
        if spec is None and self.events and self.events[-1]["kind"] in TERMINAL_KINDS:
            return self._session_start()  # ended: only a driver starts it again
        since = len(self.events)
        if self.events and self.events[-1]["kind"] not in TERMINAL_KINDS:
            since = self._session_start()  # a restarted session goes on
        self._task = asyncio.get_running_loop().create_task(self._run())
        return since

    def _session_start(self) -> int:
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i]["kind"] == "train_begin":
                return i
        return 0

    def _pool_keys(self, keys: list) -> None:
        pool = self.loop.engine if self.loop is not None else None
        if pool is not None:
            pool.keys = list(keys)

    async def _run(self) -> None:
        from synaray.engines.ray.dispatch import EvaluatorPool
        from synaray.lm.circuit_breaker import CircuitBreaker
        from synaray.program_payload import program_from_payload

        spec = self.spec or {}
        settings = {k: v for k, v in self.pool_settings.items() if k != "reward"}
        reward = deserialize_object(self.pool_settings["reward"])
        datasets = {"train": self.train, "val": self.val if self.val is not None else self.train}
        metrics = list(getattr(program_from_payload(self.payload), "metrics", None) or [])
        pool = EvaluatorPool(self.store.run_name, self.payload, reward, datasets,
                             {**settings, "detached": True}, metric_splits=(),
                             metrics=metrics, keys=self._keys)
        breaker = CircuitBreaker(**spec["breaker"]) if spec.get("breaker") else None
        self.loop = SearchLoop(self.optimizer, pool, val=self.val, metrics=metrics,
                               conditions=spec.get("conditions"), breaker=breaker,
                               info=spec.get("info"), step=self.step, events=self.events,
                               emit=self._on_event, checkpoint=self._after_step)
        self.events = self.loop.events
        try:
            try:
                await pool.start()
                if pool.rate_limiter is not None:
                    # the optimizer's own LM calls (proposals) share the evaluators' cluster
                    # rate limiter; `pool.lm_call_scope()` bounds them like an evaluator's
                    from synaray.engines.ray.rate_limiter import install_rate_limiter

                    install_rate_limiter(pool.rate_limiter)
            except Exception as exc:  # the loop never ran: say so to followers too
                await self.loop.emit("train_error", {"error": f"{type(exc).__name__}: {exc}",
                                                     "error_type": type(exc).__name__})
                raise
            await self.loop.run()
        except Exception as exc:
            self._write_status(state="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            if not self.optimizer.finished:
                self._write_status(state="stopped", error=self.loop.stop_requested)
            else:
                self._write_status()
                self.release_lease()
        finally:
            pool.close()
            self._notify()
        if self.optimizer.finished:
            await self._leave_when_unfollowed()

    async def _leave_when_unfollowed(self) -> None:
        """A finished run needs no actor: once no driver followed it for `LINGER_S` (a
        driver that followed it to the end closes it at once), the actor ends itself."""
        import ray

        while time.monotonic() - self._last_follow < LINGER_S:
            await asyncio.sleep(LINGER_S / 10)
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    def _on_event(self, event: dict) -> None:
        if event["kind"] == "progress":
            self.progress = dict(event["logs"])
        elif event["kind"] == "train_begin" or event["kind"] in TERMINAL_KINDS:
            # no checkpoint follows these: stored now (a restart needs the session's start)
            self._store_events()
        self._notify()

    def _after_step(self) -> None:
        self.step = self.loop.step
        # the step's events, stored once before its checkpoint: a restart neither loses nor
        # doubles them (one not stored yet, such as the next epoch's begin, is emitted again)
        self._store_events()
        self._checkpoint()

    def _store_events(self) -> None:
        self.store.write_json(EVENTS_FILE, {"events": self.events})

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = None

    async def follow(self, since: int, timeout_s: float = 2.0) -> dict:
        """Events from index `since` on (waits up to `timeout_s` for something new), the
        progress counts of the running step, and whether the search is running."""
        self._last_follow = time.monotonic()
        if len(self.events) <= since and self._running():
            if self._changed is None:
                self._changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout_s)
            except TimeoutError:
                pass
        return {"events": self.events[since:], "progress": dict(self.progress),
                "running": self._running()}

    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    def request_stop(self, reason: str | None = None) -> None:
        """Stop after the current step (a driver callback set `program.stop_training`)."""
        if self.loop is not None:
            self.loop.request_stop(*(() if reason is None else (reason,)))

    async def stop_search(self, state: str, reason: str) -> None:
        """The driver's fit failed: stop after the current step and say so in status.json
        ("failed" or "stopped"); a resumed fit clears it."""
        if self.loop is not None:
            self.loop.request_stop(reason)
        if self._task is not None:
            await asyncio.wait({self._task})
        self._write_status(state=state, error=reason)

    def release_lease(self) -> None:
        """The run is over: free its name at once."""
        if self.lease is not None:
            self.lease.release()

    def __repr__(self) -> str:  # Ray prefixes this actor's log lines with it
        return f"synaray:{self.store.run_name}:optimizer"

    def status(self) -> dict:
        from synaray.trainers.search_loop import optimizer_view

        return {**optimizer_view(self.optimizer, self.step), "restored": self.restored,
                "run_name": self.store.run_name, "events": len(self.events)}

    def _checkpoint(self) -> None:
        # checks the lease first (LeaseLostError: another run writes this folder now)
        self.checkpointer.write(self.optimizer, self.step)

    def _write_status(self, state: str = "running", error: str | None = None) -> None:
        self.checkpointer.write_status(self.optimizer, self.step, state, error)
