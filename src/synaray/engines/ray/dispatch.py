"""`EvaluatorPool`: a run's evaluator actors and the dispatch of requests to them.

The optimizer actor uses it to run its search (so results go from the evaluators to the
actor, never through the driver); `RayEngine.evaluate` uses it for a plain evaluation.
`evaluate` keeps no per-call state on the pool, so several calls may run at once (a
steady-state search dispatches while other members are still being scored).

Requests are split by shard (`shard_of`), cut into chunks of at most `chunk_size`
samples, and at most `max_inflight` calls run per evaluator; chunks fold in as they finish.
For a `BatchReward`, the batch reward is computed here, once over each whole request,
after its shards are in, so it sees the same batch whatever the sharding.

Example:
    >>> shard_of("example-1", 4) in range(4)
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Callable
from typing import Any

from synaray.engines.evaluation import apply_batch_reward, is_batch_reward, merge_metric_states
from synaray.engines.ray.evaluator import EvaluatorActor, results_from_columns
from synaray.engines.ray.rate_limiter import rate_limiter_actor
from synaray.lm.call_slots import limit_lm_calls
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.runs.ray_connect import NAMESPACE

__all__ = ["NAMESPACE", "EvaluatorPool", "shard_of"]



def shard_of(example_id: str, n: int) -> int:
    """The evaluator that holds an example: a stable hash, the same in every process."""
    return zlib.crc32(example_id.encode()) % n


def evaluator_name(run_name: str, index: int) -> str:
    return f"synaray-evaluator-{run_name}-{index}"


class EvaluatorPool:
    """Evaluator actors holding shards of `datasets`, and a re-entrant `evaluate`.

    Args:
        run_name: names the actors (`synaray-evaluator-<run>-<i>`, the rate limiter).
        payload: the program payload (`Program.to_payload()`).
        reward: the reward object (its config is sent to the evaluators).
        datasets: split name -> Dataset.
        settings: num_evaluators, max_concurrency, max_inflight, chunk_size,
            rate_limits ({model: RateLimits dict}), runtime_env, detached.
        metric_splits: splits whose requests also return metric states.
        metrics: the program's compiled metrics (to merge those states).
        keys: API keys sent with each call (`synaray.lm.keys`).
    """

    def __init__(self, run_name: str, payload: dict, reward: Any, datasets: dict[str, Any],
                 settings: dict, metric_splits: tuple[str, ...] = ("eval",),
                 metrics: list[Any] | None = None, keys: list | None = None) -> None:
        self.run_name = run_name
        self.payload = payload
        self.reward = reward
        self.datasets = datasets
        self.settings = dict(settings)
        self.num_evaluators = int(settings["num_evaluators"])
        self.max_inflight = int(settings.get("max_inflight", 2))
        self.chunk_size = int(settings.get("chunk_size", 32))
        self.metric_splits = tuple(sorted(metric_splits))
        self.metrics = list(metrics or [])
        self.keys = list(keys or [])
        self.evaluators: list[Any] = []
        self.rate_limiter: Any = None
        self._data: list[list] = []
        self._lm_slots: asyncio.Semaphore | None = None

    async def start(self) -> None:
        import ray

        from synaray.saving import serialize_object

        detached = bool(self.settings.get("detached"))
        lifetime = {"lifetime": "detached"} if detached else {}
        env = self.settings.get("runtime_env")
        limiter_name = (f"synaray-ratelimit-{self.run_name}" if self.settings.get("rate_limits")
                        else None)
        self.rate_limiter = rate_limiter_actor(self.settings.get("rate_limits"),
                                               name=limiter_name, runtime_env=env,
                                               detached=detached)
        reward_config = serialize_object(self.reward)
        payload_ref = ray.put(self.payload)
        # Per evaluator, what each call brings along (nested refs, fetched by the actor on
        # its first call, again after a restart); owned by this process.
        self._data = []
        self.evaluators = []
        for index in range(self.num_evaluators):
            shards = {split: ray.put(ds.to_arrow([i for i in ds.ids
                                                   if shard_of(i, self.num_evaluators) == index]))
                      for split, ds in self.datasets.items()}
            self._data.append([payload_ref, shards])
            actor = ray.remote(EvaluatorActor).options(
                name=evaluator_name(self.run_name, index), namespace=NAMESPACE,
                num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000,
                scheduling_strategy="SPREAD", runtime_env=env, get_if_exists=True,
                **lifetime,
            ).remote(index, reward_config, int(self.settings["max_concurrency"]), limiter_name)
            self.evaluators.append(actor)
        await asyncio.gather(*(a.ready.remote(data, keys=self.keys) for a, data in zip(
            self.evaluators, self._data, strict=True)))

    def lm_call_scope(self) -> contextlib.AbstractContextManager:
        """The bound for LM calls made next to this pool's evaluations in this process (the
        optimizer actor's proposals): as many at once as one evaluator makes."""
        if self._lm_slots is None:
            self._lm_slots = asyncio.Semaphore(int(self.settings["max_concurrency"]))
        return limit_lm_calls(self._lm_slots)

    def close(self) -> None:
        import ray

        for actor in self.evaluators:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        if self.rate_limiter is not None:
            try:
                ray.kill(self.rate_limiter, no_restart=True)
            except Exception:
                pass
        self.evaluators, self._data, self.rate_limiter = [], [], None

    # --- evaluation -------------------------------------------------------------------
    def calls(self, requests: list[EvalRequest]) -> list[tuple[int, list[tuple]]]:
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

    async def _dispatch(self, calls: list[tuple[int, list[tuple]]],
                        on_results: Callable[[list[EvalResult]], None] | None,
                        states: dict) -> list[EvalResult]:
        """At most `max_inflight` calls per evaluator; fold results as they come."""
        queues: dict[int, list[list[tuple]]] = {}
        for index, chunk in calls:
            queues.setdefault(index, []).append(chunk)
        results: list[EvalResult] = []
        running: dict[asyncio.Future, int] = {}

        def launch(index: int) -> None:
            if queues.get(index):
                ref = self.evaluators[index].evaluate.remote(
                    queues[index].pop(0), self._data[index], metric_splits=self.metric_splits,
                    keys=self.keys)
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
                if on_results is not None and finished:
                    on_results(finished)
                for cid, split, part in columns.get("metric_states") or []:
                    key = (cid, split)
                    states[key] = merge_metric_states(self.metrics, states.get(key), part)
                launch(index)
        return results

    async def evaluate_with_states(self, requests: list[EvalRequest],
                                   on_results: Callable[[list[EvalResult]], None] | None = None,
                                   ) -> tuple[list[EvalResult], dict]:
        """Results in request order, and merged metric states per (candidate, split)."""
        states: dict = {}
        folded = {(r.candidate_id, r.split, r.example_id): r
                  for r in await self._dispatch(self.calls(requests), on_results, states)}
        ordered = []
        for request in requests:
            batch = [folded[(request.candidate_id, request.split, e)]
                     for e in request.example_ids]
            if is_batch_reward(self.reward) and batch:
                await self._batch_reward(request, batch)
            ordered.extend(batch)
        return ordered, states

    async def evaluate(self, requests: list[EvalRequest],
                       on_results: Callable[[list[EvalResult]], None] | None = None,
                       ) -> list[EvalResult]:
        results, _ = await self.evaluate_with_states(requests, on_results)
        return results

    async def _batch_reward(self, request: EvalRequest, batch: list[EvalResult]) -> None:
        from synaray.data.data_model import JsonDataModel

        dataset = self.datasets[request.split]
        y_true = [y for _, y in dataset.fetch(list(request.example_ids))]
        y_pred = [None if r.y_pred is None else JsonDataModel(json=r.y_pred, schema=None)
                  for r in batch]
        await apply_batch_reward(self.reward, batch, y_true, y_pred)


async def _await_ref(ref: Any) -> Any:
    return await ref
