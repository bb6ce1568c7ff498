"""`run_steady_state`: the loop of a steady-state search, several evaluations in flight.

A generation-synchronous loop asks, evaluates everything asked, then tells: evaluators
wait for the slowest request and for the optimizer's proposals. Here up to `capacity`
requests are in flight at once; each is told as soon as it completes (so the optimizer
proposes the next child while the others are still being scored), and the optimizer is
asked again after every tell. The optimizer must accept, in `tell`, the results of any
complete subset of its outstanding requests, and may return [] from `ask` while results
are pending (`PopulationSearch(steady_state=True)` does).

Results are told one request at a time; requests completing in the same wake-up are told
in the order they were dispatched, so, given the order of completions (which the optimizer
records), the search is reproducible.

Example:
    >>> import asyncio
    >>> from synaray.optimizers import PopulationSearch
    >>> async def main(optimizer, engine):  # doctest: +SKIP
    ...     await run_steady_state(optimizer, engine.evaluate, capacity=4)
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from synaray.errors import ConfigError
from synaray.optimizers.protocol import EvalRequest, EvalResult

__all__ = ["run_steady_state", "steady_capacity"]

Evaluate = Callable[[list[EvalRequest]], Awaitable[list[EvalResult]]]
OnTold = Callable[[EvalRequest, list[EvalResult]], Any]


def steady_capacity(lm_lanes: int, batch_size: int) -> int:
    """Requests to keep in flight so that `lm_lanes` LM calls stay busy: enough requests to
    fill the lanes, plus two (one may be at its tail and one waiting on its tell, whose
    proposals take time).

    Example:
        >>> steady_capacity(4, 10), steady_capacity(16, 8)
        (3, 4)
    """
    return -(-lm_lanes // max(1, batch_size)) + 2


async def run_steady_state(optimizer: Any, evaluate: Evaluate, capacity: int,
                           should_stop: Callable[[], bool] | None = None,
                           on_told: OnTold | None = None) -> None:
    """Ask, keep up to `capacity` requests in flight, tell each as it completes.

    Args:
        optimizer: an ask/tell optimizer accepting partial tells (steady-state mode).
        evaluate: `async (requests) -> results`, called concurrently (one request a call).
        capacity: requests in flight at most (>= 1).
        should_stop: checked after every tell (e.g. `lambda: program.stop_training`).
        on_told: called (and awaited if it returns an awaitable) after each tell with the
            request and its results.

    Stops when the optimizer is finished, `should_stop()` is true, or nothing is asked
    while nothing is in flight; requests still in flight then are cancelled. An exception
    raised by `evaluate` cancels the others and propagates.
    """
    if capacity < 1:
        raise ConfigError(f"Invalid value for argument `capacity`. Received: {capacity}. "
                          "Expected an integer >= 1.")
    queue: deque[EvalRequest] = deque(optimizer.ask())
    running: dict[asyncio.Task, tuple[int, EvalRequest]] = {}
    sent = 0
    try:
        while not optimizer.finished and not (should_stop and should_stop()):
            while queue and len(running) < capacity:
                request = queue.popleft()
                running[asyncio.ensure_future(evaluate([request]))] = (sent, request)
                sent += 1
            if not running:
                queue.extend(optimizer.ask())
                if not queue:
                    break
                continue
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: running[t][0]):
                _, request = running.pop(task)
                results = task.result()
                await optimizer.tell(results)
                if on_told is not None:
                    outcome = on_told(request, results)
                    if inspect.isawaitable(outcome):
                        await outcome
                if optimizer.finished or (should_stop and should_stop()):
                    break
            queue.extend(optimizer.ask())
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
