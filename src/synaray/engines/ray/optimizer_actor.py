"""`OptimizerActor`: runs the same optimizer object as LocalEngine, inside Ray, checkpointed.

Named per run, detached (it outlives a dead driver), restartable: `__init__` reloads the
last checkpoint from run storage (data included), so a restart, a new driver with
`resume=True`, or a new cluster all continue from the last finished generation.

`ask` returns a step token with the requests; `tell(step, ...)` applies results only for
the current step, so a `tell` that Ray retries after a restart is not applied twice.

The actor holds the run's lease (`synaray.runs.lease`, handed over by the driver
with `lease_token`): it renews it while it lives (a restart adopts it again), refuses to
checkpoint once another run took it over, and releases it when the engine closes a
finished run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from synaray.engines.ray.evaluator import results_from_columns
from synaray.lm.call_slots import limit_lm_calls
from synaray.lm.keys import install_keys
from synaray.optimizers.budget import BudgetSpent
from synaray.optimizers.protocol import Candidate, EvalRequest
from synaray.runs.checkpoint import Checkpointer, load_checkpoint
from synaray.runs.files import CHECKPOINT_FILES, OPTIMIZER_STATE
from synaray.runs.lease import RunLease
from synaray.runs.snapshot import read_snapshot
from synaray.runs.storage import RunStorage
from synaray.saving import deserialize_object

__all__ = ["OptimizerActor", "RemoteOptimizer"]

class OptimizerActor:
    """Hosts an optimizer; writes `optimizer_state.json` and `best_program.json` each step."""

    def __init__(self, optimizer_config: dict, program_payload: dict, storage: str,
                 run_name: str, setup: dict, lease_token: str | None = None,
                 rate_limiter: str | None = None, lm_concurrency: int | None = None) -> None:
        # the optimizer's own LM calls (proposals) share the evaluators' cluster rate
        # limiter and are bounded like an evaluator's (`lm_concurrency` calls at once)
        if rate_limiter is not None:
            import ray

            from synaray.engines.ray.rate_limiter import install_rate_limiter

            install_rate_limiter(ray.get_actor(rate_limiter, namespace="synaray"))
        self._lm_concurrency = lm_concurrency
        self._lm_slots: asyncio.Semaphore | None = None
        self.store = RunStorage(storage, run_name)
        self.lease = (RunLease.adopt(self.store, lease_token).start_heartbeat()
                      if lease_token else None)
        self.optimizer = deserialize_object(optimizer_config)
        self.payload = program_payload
        data = read_snapshot(self.store)
        # the one checkpointer (synaray.runs.checkpoint); a restart keeps the first start time
        self.checkpointer = Checkpointer(self.store, program_payload, lease=self.lease)
        self.started = self.checkpointer.started
        self._asked_step: int | None = None
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

    def ask(self, keys: list | None = None) -> tuple[int, list[tuple]]:
        install_keys(keys)  # the optimizer's own models (reflection): in memory only
        requests = self.optimizer.ask()
        if self._asked_step != self.step:
            # ask() may draw the next minibatch from the RNG: checkpoint it, so that after a
            # restart the retried tell() lands on the same batch.
            self._asked_step = self.step
            self._checkpoint(files=(OPTIMIZER_STATE,))
        return self.step, [(r.candidate_id, r.state, r.example_ids, r.split) for r in requests]

    async def tell(self, step: int, columns: dict[str, Any], keys: list | None = None) -> dict:
        install_keys(keys)
        if self._lm_concurrency and self._lm_slots is None:
            self._lm_slots = asyncio.Semaphore(self._lm_concurrency)
        if step == self.step:
            with limit_lm_calls(self._lm_slots):
                await self.optimizer.tell(results_from_columns(columns))
            self.step += 1
            self._checkpoint()
        return self.status()

    def add_time(self, seconds: float) -> dict:
        self.optimizer.add_time(seconds)
        self._write_status()  # time spent (rates, ETA) is current in status.json
        return self.status()

    def mark_ended(self, state: str, reason: str) -> None:
        """The driver's fit ended before the search did: "failed" (it raised) or "stopped"
        (a callback stopped it). Said in status.json; a resumed fit clears it."""
        self._write_status(state=state, error=reason)

    def release_lease(self) -> None:
        """The run is over: free its name at once."""
        if self.lease is not None:
            self.lease.release()

    def __repr__(self) -> str:  # Ray prefixes this actor's log lines with it
        return f"synaray:{self.store.run_name}:optimizer"

    def status(self) -> dict:
        return {**self.optimizer.status(), "step": self.step, "restored": self.restored,
                "run_name": self.store.run_name}

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def predictions(self, cid: str, split: str, example_ids: list[str]) -> list | None:
        return self.optimizer.predictions(cid, split, example_ids)

    def _checkpoint(self, files: tuple[str, ...] = CHECKPOINT_FILES) -> None:
        # checks the lease first (LeaseLostError: another run writes this folder now)
        self.checkpointer.write(self.optimizer, self.step, files=files)

    def _write_status(self, state: str = "running", error: str | None = None) -> None:
        self.checkpointer.write_status(self.optimizer, self.step, state, error)


class RemoteOptimizer:
    """Driver-side stand-in for an optimizer living in an `OptimizerActor`.

    It mirrors the status the actor returns after each call, so the trainer and callbacks
    read `epoch`, `phase`, `history`, `spent`... exactly as from a local optimizer.
    """

    def __init__(self, actor: Any, status: dict, keys: list | None = None) -> None:
        self.actor = actor
        self._keys = keys or []  # API keys sent with each call (see synaray.lm.keys)
        self._step = status["step"]
        self._apply(status)

    def _apply(self, status: dict) -> None:
        self.status_snapshot = status
        for key in ("epoch", "epochs", "phase", "generation", "stop_reason", "best_id",
                    "best_val_reward", "history", "steps_per_epoch", "population"):
            setattr(self, key, status[key])
        self.spent = BudgetSpent(**status["spent"])
        self._best = Candidate.from_dict(status["best"])

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    def ask(self) -> list[EvalRequest]:
        import ray

        self._step, requests = ray.get(self.actor.ask.remote(keys=self._keys))
        return [EvalRequest(cid, state, tuple(ids), split)
                for cid, state, ids, split in requests]

    async def tell(self, results: list) -> None:
        from synaray.engines.ray.evaluator import results_to_columns

        self._apply(await self.actor.tell.remote(self._step, results_to_columns(results),
                                                 keys=self._keys))

    def add_time(self, seconds: float) -> None:
        import ray

        self._apply(ray.get(self.actor.add_time.remote(seconds)))

    def mark_ended(self, state: str, reason: str, timeout_s: float = 10.0) -> None:
        """Record in status.json that the fit ended early: "failed" or "stopped" (best
        effort, never raises)."""
        import ray

        try:
            ray.get(self.actor.mark_ended.remote(state, reason), timeout=timeout_s)
        except Exception:  # the actor or the cluster is gone: status.json goes stale
            pass

    def best(self) -> Candidate:
        return self._best

    def predictions(self, cid: str, split: str, example_ids: list[str]) -> list | None:
        import ray

        return ray.get(self.actor.predictions.remote(cid, split, example_ids))

    def state_dict(self) -> dict:
        import ray

        return ray.get(self.actor.state_dict.remote())

    def __repr__(self) -> str:
        return (f"<RemoteOptimizer epoch={self.epoch}/{self.epochs} "
                f"generation={self.generation} best={self.best_val_reward}>")
