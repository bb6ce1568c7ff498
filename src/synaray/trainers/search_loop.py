"""`SearchLoop`: one search, step by step, written once for every engine.

One step is: ask -> evaluate -> circuit breaker -> tell -> add_time -> stop conditions ->
events -> checkpoint. LocalEngine runs the loop in the fit's process; on RayEngine the
optimizer actor runs the same object next to the optimizer, so results never travel to the
driver and the run goes on without it (`synaray.engines.ray.optimizer_actor`).

The loop reports what happens as a stream of events (plain JSON dicts), which the driver
turns into callback calls (`synaray.trainers.events.CallbackEvents`):

- "train_begin"  logs: the fit's settings;
- "epoch_begin"  epoch;
- "progress"     samples scored, LM calls and failed samples so far (not stored);
- "batch_end"    after each training generation, logs: its history row;
- "epoch_end"    logs: rewards, best candidate, LM calls, `val_<metric>`s;
- "train_end"    logs: stop_reason, state ("finished" or "stopped");
- "train_error"  logs: error (the loop raised; the run is "failed").

Every event but "progress" is numbered (`seq`, its index in `events`) and carries `step`
(tells done) and `view`, a small snapshot of the optimizer (epoch, generation, spent,
best candidate...). A host that checkpoints stores the events before the checkpoint; after a
restart it keeps those with `step <= ` the restored step (`events_up_to`), so no event is
lost or doubled, and stop conditions are rebuilt by replaying them.

Example:
    >>> import asyncio
    >>> from synaray.engines import LocalEngine  # doctest: +SKIP
    >>> loop = SearchLoop(optimizer, engine, emit=print)  # doctest: +SKIP
    >>> asyncio.run(loop.run())  # doctest: +SKIP
    'epochs completed (1)'
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from synaray.data.data_model import to_json_data_model
from synaray.optimizers.optimizer import Optimizer
from synaray.optimizers.protocol import TRAIN, EvalRequest, EvalResult
from synaray.runs.status import STOPPED_BY_CALLBACK
from synaray.trainers.protocols import SearchEngine
from synaray.trainers.stop_conditions import (
    StopCondition,
    conditions_from_config,
    conditions_to_config,
)

__all__ = ["STORED_KINDS", "SearchLoop", "SearchSpec", "events_up_to", "metric_logs",
           "optimizer_view"]

#: Event kinds kept in `SearchLoop.events` (and a run's stored event log).
STORED_KINDS = ("train_begin", "epoch_begin", "batch_end", "epoch_end", "train_end",
                "train_error")
TERMINAL_KINDS = ("train_end", "train_error")

Emit = Callable[[dict], Awaitable[None] | None]


@dataclass
class SearchSpec:
    """How a fit's search runs besides the optimizer: stop conditions, the circuit breaker
    and the "train_begin" logs. `to_dict()` is what the optimizer actor gets (and stores,
    to restart the search on its own).

    Example:
        >>> SearchSpec(info={"epochs": 2}).to_dict()
        {'conditions': [], 'breaker': None, 'info': {'epochs': 2}}
    """

    conditions: list[StopCondition] = field(default_factory=list)
    breaker: Any = None
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"conditions": conditions_to_config(self.conditions),
                "breaker": None if self.breaker is None else self.breaker.get_config(),
                "info": self.info}


def optimizer_view(optimizer: Any, step: int) -> dict:
    """What a follower needs to mirror the optimizer: small, JSON."""
    return {"step": step, "epoch": optimizer.epoch, "epochs": optimizer.epochs,
            "phase": optimizer.phase, "generation": optimizer.generation,
            "stop_reason": optimizer.stop_reason, "best_id": optimizer.best_id,
            "best": optimizer.best().to_dict(), "best_val_reward": optimizer.best_val_reward,
            "steps_per_epoch": optimizer.steps_per_epoch,
            "population": list(optimizer.population), "spent": optimizer.spent.model_dump()}


def events_up_to(events: list[dict], step: int) -> list[dict]:
    """The stored events consistent with a checkpoint at `step` (renumbered)."""
    kept = [dict(e) for e in events if e.get("step", 0) <= step]
    for seq, event in enumerate(kept):
        event["seq"] = seq
    return kept


async def metric_logs(metrics: list[Any], dataset: Any, y_preds: list[Any], prefix: str,
                      states: dict | None = None) -> dict:
    """Each metric's result: from `states` (merged by the engine from the states computed
    where the predictions were made) when given, else from one pass over the predictions."""
    logs = {}
    y_true = None
    for metric in metrics:
        metric.reset_state()
        if states is not None and metric.name in states:
            metric.set_state(states[metric.name])
        else:
            if y_true is None:
                y_true = [to_json_data_model(y) for _, y in dataset.fetch(dataset.ids)]
            await metric.update_state(y_true, y_preds)
        logs[prefix + metric.name] = metric.result()
    return logs


class SearchLoop:
    """Runs an optimizer against an engine until it finishes or a stop condition holds.

    Args:
        optimizer: a set-up (or restored) ask/tell optimizer.
        engine: what runs the requests (`evaluate(requests, on_results=...)`).
        val: the validation Dataset (for `val_<metric>` logs at epoch ends), or None.
        metrics: the program's compiled metrics.
        conditions: `StopCondition`s or their configs.
        breaker: a `CircuitBreaker` (raises when LM calls keep failing), or None.
        info: the "train_begin" logs.
        step: tells done so far (a restored run's checkpoint step).
        events: the stored events of this run so far (after a restart).
        emit: called with each event (sync or async).
        checkpoint: awaited/called after each step's events (the host's checkpoint).
        clock: a `time.monotonic`-like function.

    Example:
        >>> SearchLoop(None, None).stop_requested is None
        True
    """

    def __init__(self, optimizer: Optimizer | None, engine: SearchEngine | None, *,
                 val: Any = None,
                 metrics: list[Any] | None = None,
                 conditions: list[StopCondition | dict] | None = None, breaker: Any = None,
                 info: dict | None = None, step: int = 0, events: list[dict] | None = None,
                 emit: Emit | None = None,
                 checkpoint: Callable[[], Awaitable[None] | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.optimizer = optimizer
        self.engine = engine
        self.val = val
        self.metrics = list(metrics or [])
        self.conditions = conditions_from_config(conditions)  # type: ignore[arg-type]
        self.breaker = breaker
        self.info = dict(info or {})
        self.step = step
        self.events: list[dict] = list(events or [])
        self._emit_fn = emit
        self._checkpoint_fn = checkpoint
        self.clock = clock
        self.stop_requested: str | None = None
        self.progress = {"samples": 0, "lm_calls": 0, "failures": 0}
        self._replay_conditions()

    # --- control ---------------------------------------------------------------------
    def request_stop(self, reason: str = STOPPED_BY_CALLBACK) -> None:
        """Stop after the current step (`program.stop_training` of a callback)."""
        if self.stop_requested is None:
            self.stop_requested = reason

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1]["kind"] in TERMINAL_KINDS

    def _session(self) -> list[dict]:
        """The events since the last train_begin (this fit's, or the one restarted)."""
        start = 0
        for i, event in enumerate(self.events):
            if event["kind"] == "train_begin":
                start = i
        return self.events[start:]

    def _replay_conditions(self) -> None:
        for event in self.events:
            if event["kind"] == "epoch_end":
                for condition in self.conditions:
                    condition.check("epoch_end", event.get("logs") or {}, None)

    # --- events ----------------------------------------------------------------------
    async def emit(self, kind: str, logs: dict | None = None, **fields: Any) -> dict:
        event = {"kind": kind, **fields, "logs": dict(logs or {})}
        if kind in STORED_KINDS:
            event["seq"] = len(self.events)
            event["step"] = self.step
            if self.optimizer is not None:
                event["view"] = optimizer_view(self.optimizer, self.step)
            event["time"] = time.time()
            self.events.append(event)
        if self._emit_fn is not None:
            out = self._emit_fn(event)
            if inspect.isawaitable(out):
                await out
        return event

    def on_results(self, results: list[EvalResult]) -> None:
        """The engine's progress callback: counts, and a "progress" event (not stored)."""
        self.progress["samples"] += len(results)
        self.progress["lm_calls"] += sum(r.lm_calls for r in results)
        self.progress["failures"] += sum(1 for r in results if r.error)
        if self._emit_fn is not None:
            self._emit_fn({"kind": "progress", "logs": dict(self.progress),
                           "results": results})

    # --- the loop --------------------------------------------------------------------
    async def run(self) -> str | None:
        """Run to the end; returns the stop reason (None: stopped on request)."""
        if self.ended or not self.events:
            await self.emit("train_begin", self.info)
        try:
            if getattr(self.optimizer, "steady_state", False):
                await self._run_steady_state()
            else:
                await self._run_generations()
        except BaseException as exc:
            await self.emit("train_error", {"error": f"{type(exc).__name__}: {exc}",
                                            "error_type": type(exc).__name__})
            raise
        opt = self.optimizer
        state = "finished" if opt.finished else "stopped"
        await self.emit("train_end", {"stop_reason": opt.stop_reason, "state": state,
                                      "reason": opt.stop_reason or self.stop_requested})
        return opt.stop_reason

    def _current_epoch(self) -> int | None:
        for event in reversed(self._session()):
            if event["kind"] == "epoch_begin":
                return event["epoch"]
        return None

    async def _run_generations(self) -> None:
        opt = self.optimizer
        epoch = self._current_epoch()
        while not opt.finished and self.stop_requested is None:
            if opt.epoch != epoch:
                epoch = opt.epoch
                await self.emit("epoch_begin", epoch=epoch)
            started = self.clock()
            phase = opt.phase
            requests = opt.ask()
            results = await self._evaluate(requests) if requests else []
            with self._lm_call_scope():  # the optimizer's proposals share the LM-call bound
                await opt.tell(results)
            await self.step_done(phase, epoch, self.clock() - started)

    async def step_done(self, phase: str, epoch: int | None, seconds: float) -> None:
        """After a generation's tell: time, stop conditions, events, checkpoint."""
        opt = self.optimizer
        opt.add_time(seconds)
        self.step += 1
        if phase == TRAIN and opt.history:
            logs = dict(opt.history[-1])
            self._check("batch_end", logs)
            await self.emit("batch_end", logs, generation=opt.generation)
        if opt.epoch != epoch or opt.finished:
            await self._end_epoch(epoch)
        await self._save()

    async def _evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        """Evaluate, then feed the circuit breaker (before the tell: the checkpoint stays the
        last good step)."""
        results = await self.engine.evaluate(requests, on_results=self.on_results)
        if self.breaker is not None:
            self.breaker.update(results)
        return results

    async def _end_epoch(self, epoch: int | None) -> None:
        logs = await self.epoch_logs()
        self._check("epoch_end", logs)
        await self.emit("epoch_end", logs, epoch=epoch)

    async def _save(self) -> None:
        """The step's checkpoint (the optimizer actor's, or none in-process)."""
        if self._checkpoint_fn is not None:
            out = self._checkpoint_fn()
            if inspect.isawaitable(out):
                await out

    def _check(self, kind: str, logs: dict) -> None:
        opt = self.optimizer
        for condition in self.conditions:
            reason = condition.check(kind, logs, opt)
            if reason is not None and opt.stop_reason is None:
                opt.stop_reason = reason

    async def epoch_logs(self) -> dict:
        opt = self.optimizer
        logs = dict(opt.history[-1]) if opt.history else {}
        logs.pop("epoch", None)
        best = opt.best()
        logs["best_candidate"] = best.id
        logs["lm_calls"] = opt.spent.lm_calls
        logs["lm_failures"] = opt.spent.lm_failures
        if self.val is not None and self.metrics:
            preds = opt.predictions(best.id, "val", list(self.val.ids))
            if preds is not None:
                preds = [None if p is None else to_json_data_model(p) for p in preds]
                logs.update(await metric_logs(self.metrics, self.val, preds, "val_"))
        return logs

    def _lm_call_scope(self) -> contextlib.AbstractContextManager:
        """The engine's bound on LM calls, for the optimizer's own calls (proposals)."""
        scope = getattr(self.engine, "lm_call_scope", None)
        return scope() if scope is not None else contextlib.nullcontext()

    async def _run_steady_state(self) -> None:
        """The asynchronous population search (`synaray.trainers.steady_state`): up to
        `capacity` requests in flight, each told as it completes; events and checkpoints
        after every tell, one `batch_end` per generation's worth of work."""
        from synaray.trainers.steady_state import run_steady_state, steady_capacity

        opt = self.optimizer
        epoch = self._current_epoch()
        if epoch != opt.epoch:
            epoch = opt.epoch
            await self.emit("epoch_begin", epoch=epoch)
        epoch_open = True
        generation = opt.generation
        last = self.clock()

        async def end_epoch() -> None:
            nonlocal epoch, epoch_open
            await self._end_epoch(epoch)
            epoch, epoch_open = opt.epoch, False
            if not opt.finished and opt.epoch < opt.epochs:
                await self.emit("epoch_begin", epoch=epoch)
                epoch_open = True

        async def on_told(request: EvalRequest, results: list[EvalResult]) -> None:
            nonlocal generation, last
            now = self.clock()
            opt.add_time(now - last)
            last = now
            self.step += 1
            while generation < opt.generation:  # one event per generation's worth of work
                generation += 1
                back = opt.generation - generation
                logs = dict(opt.history[-1 - back]) if back < len(opt.history) else {}
                self._check("batch_end", logs)
                await self.emit("batch_end", logs, generation=generation)
            if opt.epoch != epoch or opt.finished:
                await end_epoch()
            await self._save()

        capacity = steady_capacity(engine_lanes(self.engine), getattr(opt, "batch_size", 1))
        with self._lm_call_scope():
            await run_steady_state(opt, self._evaluate, capacity,
                                   should_stop=lambda: self.stop_requested is not None,
                                   on_told=on_told)
        if opt.finished and epoch_open:  # the search ended in ask(): close the epoch
            await end_epoch()


def engine_lanes(engine: Any) -> int:
    """LM calls an engine (or a Ray evaluator pool) runs at once: per evaluator times
    evaluators."""
    settings = getattr(engine, "settings", None)
    per = (settings or {}).get("max_concurrency") if isinstance(settings, dict) else None
    per = per if isinstance(per, int) else getattr(engine, "max_concurrency", None)
    return (per if isinstance(per, int) else 8) * max(1, int(getattr(engine, "num_evaluators",
                                                                      1) or 1))
