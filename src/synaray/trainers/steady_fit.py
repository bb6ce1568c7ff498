"""The fit loop of a steady-state optimizer: `run_steady_state` fed by the engine, with the
callbacks, the circuit breaker and the wall time of the generation-synchronous loop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from synaray.callbacks import CallbackList
from synaray.lm.circuit_breaker import CircuitBreaker
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.trainers.steady_state import run_steady_state, steady_capacity

__all__ = ["steady_fit_loop"]


def engine_lanes(engine: Any) -> int:
    """LM calls the engine runs at once: per evaluator times evaluators."""
    per = getattr(engine, "max_concurrency", None)
    return (per if isinstance(per, int) else 8) * max(1, int(getattr(engine, "num_evaluators",
                                                                      1) or 1))


async def steady_fit_loop(program: Any, optimizer: Any, engine: Any, cbs: CallbackList,
                          val: Any, breaker: CircuitBreaker | None,
                          epoch_logs: Callable[[Any, Any, Any], Awaitable[dict]]) -> None:
    """Run a steady-state search to its end; `on_train_begin` was called, the caller sets
    the best state and calls `on_train_end`."""
    epoch, generation = optimizer.epoch, optimizer.generation
    last = time.monotonic()
    cbs.on_epoch_begin(epoch)

    async def evaluate(requests: list[EvalRequest]) -> list[EvalResult]:
        results = await engine.evaluate(requests, on_results=cbs.on_results)
        if breaker is not None:  # before tell: the checkpoint stays the last good step
            breaker.update(results)
        return results

    epoch_open = True

    async def end_epoch() -> None:
        nonlocal epoch, epoch_open
        program.set_state(optimizer.best().state)
        cbs.on_epoch_end(epoch, await epoch_logs(program, optimizer, val))
        epoch, epoch_open = optimizer.epoch, False
        if not optimizer.finished and optimizer.epoch < getattr(optimizer, "epochs", 0):
            cbs.on_epoch_begin(epoch)
            epoch_open = True

    async def on_told(request: EvalRequest, results: list[EvalResult]) -> None:
        nonlocal generation, last
        now = time.monotonic()
        optimizer.add_time(now - last)
        last = now
        while generation < optimizer.generation:  # one call per generation's worth of work
            generation += 1
            back = optimizer.generation - generation
            history = optimizer.history
            cbs.on_batch_end(generation, dict(history[-1 - back]) if back < len(history)
                             else {})
        if optimizer.epoch != epoch or optimizer.finished:
            await end_epoch()

    capacity = steady_capacity(engine_lanes(engine), getattr(optimizer, "batch_size", 1))
    scope = getattr(engine, "lm_call_scope", contextlib.nullcontext)
    with scope():
        await run_steady_state(optimizer, evaluate, capacity,
                               should_stop=lambda: bool(program.stop_training),
                               on_told=on_told)
    if optimizer.finished and epoch_open:
        # the search ended in ask() (the last validations were done): close the epoch
        await end_epoch()

