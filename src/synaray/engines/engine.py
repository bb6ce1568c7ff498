"""The engine interface: where evaluations run (DESIGN §2, STYLE "Engines")."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from synaray.engines.evaluation import merge_metric_states
from synaray.errors import UsageError
from synaray.optimizers.protocol import EvalRequest, EvalResult

__all__ = ["Engine", "EngineState"]


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


class Engine:
    """Runs `EvalRequest`s and returns one `EvalResult` per (candidate, example).

    Lifecycle: `await engine.start(program, reward, datasets)` once, any number of
    `await engine.evaluate(requests)`, then `await engine.close()`. `datasets` maps a split
    name ("train", "val", "eval") to a `Dataset`; requests name examples by id.

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

    #: Splits whose requests also yield merged metric states (`metric_states`).
    metric_splits: frozenset[str] = frozenset({"eval"})

    def __init__(self) -> None:
        self.state = EngineState.UNSTARTED
        self.metric_states: dict[tuple[str, str], dict[str, Any]] = {}
        self.metrics: list[Any] = []  # the program's compiled metrics, set by `_start`

    async def start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        if self.state is EngineState.CLOSED:
            raise UsageError(f"{type(self).__name__} was closed; create a new engine.")
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
        return optimizer

    async def close(self) -> None:
        if self.state is EngineState.RUNNING:
            await self._close()
        self.state = EngineState.CLOSED

    async def _start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        raise NotImplementedError

    async def _close(self) -> None:
        pass

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
