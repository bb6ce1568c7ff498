"""Running candidates on examples: the work every engine does, written once.

`evaluate_request` runs one candidate on its examples with bounded concurrency, computes
element-wise rewards next to the predictions, then (for a `BatchReward`) computes the
batch reward once over the whole request. LocalEngine calls it in-process; Ray evaluator
actors call it on their shard. Results come back in request order whatever the completion
order, and a failed example is a scored result (reward 0, error kept), never an exception.

`run_request` does the same and, when asked, also returns the program's metric states
over the request's examples, computed where the predictions are (`Metric.get_state()`
JSON); states of shards are added with `merge_metric_states`, never averaged, so the
merged result equals one pass over all the examples.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from synaray.data.data_model import to_json_data_model
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.program_payload import program_from_payload
from synaray.utils.tracing import Trace, trace_scope

__all__ = ["SAMPLES_PER_LM_SLOT", "ProgramPool", "evaluate_request", "is_batch_reward",
           "merge_metric_states", "metric_states", "run_request"]

MetricStates = dict[str, dict[str, Any]]

#: Engines bound LM calls (`synaray.lm.call_slots`); samples run this many times wider, so
#: a sample parsing its answer or computing its reward never leaves an LM slot idle.
SAMPLES_PER_LM_SLOT = 2


def is_batch_reward(reward: Any) -> bool:
    return hasattr(reward, "compute_batch")


class ProgramPool:
    """Programs built from one payload with different candidate states, reused by id (LRU)."""

    def __init__(self, payload: dict, size: int = 32) -> None:
        self.payload = payload
        self.size = size
        self._programs: OrderedDict[str, Any] = OrderedDict()

    def get(self, candidate_id: str, state: dict) -> Any:
        program = self._programs.get(candidate_id)
        if program is None:
            program = program_from_payload(self.payload)
            program.set_state(state)
            self._programs[candidate_id] = program
            if len(self._programs) > self.size:
                self._programs.popitem(last=False)
        self._programs.move_to_end(candidate_id)
        return program


def _usage(result: EvalResult, trace: Trace) -> None:
    result.lm_calls += trace.lm_calls
    result.lm_failures += trace.failures
    result.prompt_tokens += trace.prompt_tokens
    result.completion_tokens += trace.completion_tokens
    result.cost += trace.cost


OnResult = Callable[[EvalResult], None]


async def _run_one(program: Any, reward: Any, request: EvalRequest, example_id: str, x: Any,
                   y: Any, semaphore: asyncio.Semaphore,
                   on_result: OnResult | None = None) -> tuple[EvalResult, Any]:
    async with semaphore:
        with trace_scope() as trace:
            y_pred = await program.call(x)
            value = 0.0
            if y_pred is not None and y is not None and not is_batch_reward(reward):
                value = (await reward.compute_elementwise([y], [y_pred]))[0]
    pred_json = None if y_pred is None else to_json_data_model(y_pred).get_json()
    errors = trace.errors
    if y_pred is None and not errors:
        errors = ["the program returned no output"]
    result = EvalResult(
        candidate_id=request.candidate_id, example_id=example_id, split=request.split,
        reward=float(value), y_pred=pred_json, error="; ".join(errors) or None,
        trace=[{"module": m.module, "inputs": m.inputs, "outputs": m.outputs}
               for m in trace.modules])
    _usage(result, trace)
    if on_result is not None:
        on_result(result)
    return result, y_pred


async def evaluate_request(pool: ProgramPool, reward: Any, request: EvalRequest,
                           rows: list[tuple[Any, Any]], semaphore: asyncio.Semaphore,
                           apply_batch: bool = True) -> list[EvalResult]:
    """Evaluate one request; `rows` are the (x, y) pairs of `request.example_ids`, in order.

    With a `BatchReward` and `apply_batch=False` (an evaluator holding only a shard of the
    batch), rewards are left at 0 for the caller to compute over the whole batch.
    """
    results, _ = await run_request(pool, reward, request, rows, semaphore, apply_batch)
    return results


async def run_request(pool: ProgramPool, reward: Any, request: EvalRequest,
                      rows: list[tuple[Any, Any]], semaphore: asyncio.Semaphore,
                      apply_batch: bool = True, with_metrics: bool = False,
                      on_result: OnResult | None = None) -> tuple[list[EvalResult],
                                                                  MetricStates | None]:
    """`evaluate_request`, plus (with `with_metrics`) the states of the program's compiled
    metrics over these examples: `{metric_name: state}`, None when it has no metrics.
    `on_result` is called with each sample's result as soon as it is scored (progress)."""
    program = pool.get(request.candidate_id, request.state)
    pairs = await asyncio.gather(*(
        _run_one(program, reward, request, eid, x, y, semaphore, on_result)
        for eid, (x, y) in zip(request.example_ids, rows, strict=True)))
    results = [r for r, _ in pairs]
    if apply_batch and is_batch_reward(reward) and results:
        await apply_batch_reward(reward, results, [y for _, y in rows], [p for _, p in pairs])
    states = None
    metrics = getattr(program, "metrics", None)
    if with_metrics and metrics and results:
        states = await metric_states(metrics, [y for _, y in rows], [p for _, p in pairs])
    return results, states


def _fresh(metric: Any) -> Any:
    """A new, empty metric configured like `metric` (states are per instance)."""
    return type(metric).from_config(metric.get_config())


async def metric_states(metrics: list[Any], y_true: list[Any],
                        y_pred: list[Any]) -> MetricStates:
    """Each metric's state after one pass over (y_true, y_pred); `metrics` are untouched."""
    states = {}
    for metric in metrics:
        fresh = _fresh(metric)
        await fresh.update_state(y_true, y_pred)
        states[metric.name] = fresh.get_state()
    return states


def merge_metric_states(metrics: list[Any], *parts: MetricStates | None) -> MetricStates:
    """Add states of disjoint sets of examples (`Metric.merge_state`): exact, any order."""
    merged = {}
    for metric in metrics:
        total = _fresh(metric)
        for part in parts:
            if part and metric.name in part:
                total.merge_state(part[metric.name])
        merged[metric.name] = total.get_state()
    return merged


async def apply_batch_reward(reward: Any, results: list[EvalResult], y_true: list[Any],
                             y_pred: list[Any]) -> None:
    """Run `compute_batch` once over a whole batch and write the per-sample rewards."""
    with trace_scope() as trace:
        values = await reward.compute_batch(y_true, y_pred)
    for result, value in zip(results, values, strict=True):
        result.reward = float(value)
    _usage(results[0], trace)
