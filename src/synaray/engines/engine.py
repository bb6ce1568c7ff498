"""The engine interface: where evaluations run and where a search's loop runs (DESIGN §2).

`Engine` is the abstract base both engines extend and the trainer, the search loop and the
optimizer actor are typed against (no `hasattr` probes): `start` / `evaluate` / `finish`
for one fit or evaluation, `host_optimizer` + `run_search` for a fit, `close` (or `with`,
`async with`) at the end of the engine's life. An engine object is reusable: evaluate,
then fit, then evaluate again on the same object.
"""

from __future__ import annotations

import abc
import contextlib
import enum
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from synaray.engines.evaluation import merge_metric_states
from synaray.errors import UsageError
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.trainers.events import CallbackEvents
from synaray.trainers.protocols import SearchOptimizer
from synaray.trainers.search_loop import SearchLoop, SearchSpec

__all__ = ["Engine", "EngineState", "SearchOptimizer"]


OnResults = Callable[[list[EvalResult]], None]


@dataclass
class _EvalCall:
    """One `evaluate` call's own progress callback and metric states (re-entrancy)."""

    on_results: OnResults | None
    metric_states: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


#: The `evaluate` call the current task runs under: concurrent calls (each awaited in its
#: own task, as `asyncio.gather` and `create_task` do) never see each other's.
_CALL: ContextVar[_EvalCall | None] = ContextVar("synaray_eval_call", default=None)


class EngineState(enum.Enum):
    UNSTARTED = "unstarted"
    RUNNING = "running"
    CLOSED = "closed"


class Engine(abc.ABC):
    """Runs `EvalRequest`s and returns one `EvalResult` per (candidate, example).

    Lifecycle of one fit or evaluation: `await engine.start(program, reward, datasets)`,
    any number of `await engine.evaluate(requests)` (a fit: `host_optimizer` then
    `run_search`), then `await engine.finish()`. The engine stays usable for the next
    one; `await engine.close()` (or leaving `with engine:` / `async with engine:`) frees
    it for good. `datasets` maps a split name ("train", "val", "eval") to a `Dataset`;
    requests name examples by id.

    Metric states: for requests of a split in `metric_splits` ("eval", what `evaluate`
    scores), the program's compiled metrics are updated where the predictions are made
    (each evaluator, on its shard) and their states merged exactly; after `evaluate`,
    `metric_states[(candidate_id, split)]` is `{metric_name: Metric.get_state()}`.

    Progress: `evaluate(requests, on_results=f)` calls `f(results)` with each group of
    results as it is finished (one sample in-process, one chunk from a Ray evaluator), in
    completion order, before the whole list is returned in request order.

    Re-entrant: several `await engine.evaluate(...)` may run at once on one engine (a
    steady-state search keeps several in flight); each call has its own `on_results` and
    its own metric states (`evaluate(..., metric_states=d)` fills `d`; the attribute
    `metric_states` holds those of the call that finished last).
    """

    #: LM calls in flight at once (per evaluator on RayEngine).
    max_concurrency: int = 16

    #: Splits whose requests also yield merged metric states (`metric_states`).
    metric_splits: frozenset[str] = frozenset({"eval"})

    #: Whether a search that can run either way should run steady-state here
    #: (`Optimizer.choose_loop`): True where many evaluators must be kept busy (RayEngine).
    prefers_steady_state: bool = False

    def __init__(self) -> None:
        self.state = EngineState.UNSTARTED
        self.metric_states: dict[tuple[str, str], dict[str, Any]] = {}
        self.metrics: list[Any] = []  # the program's compiled metrics, set by `_start`
        self._val: Any = None  # the fit's validation Dataset (`host_optimizer`)

    async def start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        """Get ready to run `program` with `reward` on `datasets` (after a `finish`, or
        even a `close`, the engine starts again)."""
        self.metric_states = {}
        await self._start(program, reward, datasets)
        self.state = EngineState.RUNNING

    async def evaluate(self, requests: list[EvalRequest], on_results: OnResults | None = None,
                       metric_states: dict | None = None) -> list[EvalResult]:
        """Run `requests`; results in request order. Safe to call concurrently.

        `metric_states`, when given, receives this call's merged metric states.
        """
        if self.state is not EngineState.RUNNING:
            raise UsageError(f"{type(self).__name__}.evaluate() needs a started engine "
                             f"(state: {self.state.value}); call start() first.")
        call = _EvalCall(on_results)
        with _calling(call):
            results = await self._evaluate(requests)
        self.metric_states = call.metric_states
        if metric_states is not None:
            metric_states.update(call.metric_states)
        return results

    def _fold_metric_states(self, parts: list) -> None:
        """Add `(candidate_id, split, {metric: state})` parts into the current call's metric
        states (exact sums of disjoint examples, never averages); `self.metrics` is set by
        `_start`."""
        call = _CALL.get()
        if call is None:
            return
        for cid, split, states in parts:
            key = (cid, split)
            call.metric_states[key] = merge_metric_states(self.metrics,
                                                          call.metric_states.get(key), states)

    def _report(self, results: list[EvalResult]) -> None:
        """Pass finished results to the current call's `on_results` callback, if any."""
        call = _CALL.get()
        if call is not None and call.on_results is not None and results:
            call.on_results(results)

    def lm_call_scope(self) -> contextlib.AbstractContextManager:
        """The bound on LM calls this engine's evaluations share, for calls made next to
        them in this process (an optimizer's proposals): none by default."""
        return contextlib.nullcontext()

    async def host_optimizer(self, optimizer: Any, initial_state: dict, train: Any, val: Any,
                             batch_size: int, epochs: int, saved: dict | None = None,
                             resume: bool = False) -> Any:
        """Set up (or restore) the optimizer where this engine runs it; return its handle.

        The base runs it in this process: the handle is the optimizer itself. `saved` is an
        optimizer state to resume from (BackupAndRestore).
        """
        if saved is not None:
            optimizer.load_state_dict(saved, train, val)
        else:
            optimizer.setup(initial_state, train, val, batch_size=batch_size, epochs=epochs)
        self._val = val
        return optimizer

    async def run_search(self, optimizer: SearchOptimizer, search: SearchSpec,
                         events: Any) -> None:
        """Run the search loop of a fit to its end, feeding `events` (a callable taking
        each event; `CallbackEvents` for a fit). The base runs it in this process."""
        loop = SearchLoop(optimizer, self, val=self._val,
                          metrics=self.metrics, conditions=search.conditions,
                          breaker=search.breaker, info=search.info, emit=events)
        if isinstance(events, CallbackEvents):
            events.request_stop = loop.request_stop
        await loop.run()

    async def stop_search(self, state: str, reason: str) -> None:  # noqa: B027 (optional hook)
        """The fit's driver failed ("failed") or stopped it: say so where the run lives.
        In-process there is nothing left to stop."""

    async def finish(self) -> None:
        """End one fit or evaluation: free what it used; the engine stays usable."""
        if self.state is EngineState.RUNNING:
            await self._finish()
            self.state = EngineState.UNSTARTED

    async def close(self) -> None:
        """Free the engine for good (it can still `start` again, from scratch)."""
        await self.finish()
        await self._close()
        self.state = EngineState.CLOSED

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.close())
        else:
            raise UsageError(f"Inside a running event loop use `async with` on "
                             f"{type(self).__name__}, not `with`.")

    @abc.abstractmethod
    async def _start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        """Set up one fit's or evaluation's program, reward and data."""

    @abc.abstractmethod
    async def _evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        """Run the requests; results in request order."""

    async def _finish(self) -> None:  # noqa: B027 (optional hook)
        """Free what one fit or evaluation used."""

    async def _close(self) -> None:  # noqa: B027 (optional hook)
        """Free the engine's own resources (a cluster it started)."""

    def usage(self) -> dict:
        """LM usage seen by this engine (calls, tokens, failures...)."""
        return {}


@contextlib.contextmanager
def _calling(call: _EvalCall) -> Iterator[None]:
    token = _CALL.set(call)
    try:
        yield
    finally:
        _CALL.reset(token)
