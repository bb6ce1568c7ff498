"""`EvaluatorActor`: holds the built program and its shard of the data; scores requests.

Async and restartable: a restart re-runs `__init__` from the same arguments (program
payload, reward config, shard tables in the object store), and `evaluate` is idempotent,
so Ray can retry a call that was in flight when the actor died. Per-example failures are
scored results inside the method, never a crashed actor.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import numpy as np

from synaray.data.datasets import Dataset
from synaray.engines.evaluation import SAMPLES_PER_LM_SLOT, ProgramPool, run_request
from synaray.lm.call_slots import limit_lm_calls
from synaray.lm.keys import install_keys
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.saving import deserialize_object

__all__ = ["EvaluatorActor", "results_from_columns", "results_to_columns"]

_INT_COLUMNS = ("lm_calls", "lm_failures", "prompt_tokens", "completion_tokens")


def results_to_columns(results: list[EvalResult]) -> dict[str, Any]:
    """Columnar, numpy-backed form of results: cheap to ship through the object store."""
    return {
        "candidate_id": [r.candidate_id for r in results],
        "example_id": [r.example_id for r in results],
        "split": [r.split for r in results],
        "reward": np.asarray([r.reward for r in results], dtype=np.float64),
        "cost": np.asarray([r.cost for r in results], dtype=np.float64),
        **{c: np.asarray([getattr(r, c) for r in results], dtype=np.int64)
           for c in _INT_COLUMNS},
        "y_pred": [None if r.y_pred is None else json.dumps(r.y_pred) for r in results],
        "error": [r.error for r in results],
        "trace": [json.dumps(r.trace) for r in results],
    }


def results_from_columns(cols: dict[str, Any]) -> list[EvalResult]:
    out = []
    for i, example_id in enumerate(cols["example_id"]):
        y_pred = cols["y_pred"][i]
        out.append(EvalResult(
            candidate_id=cols["candidate_id"][i], example_id=example_id,
            split=cols["split"][i], reward=float(cols["reward"][i]),
            y_pred=None if y_pred is None else json.loads(y_pred), error=cols["error"][i],
            trace=json.loads(cols["trace"][i]), cost=float(cols["cost"][i]),
            **{c: int(cols[c][i]) for c in _INT_COLUMNS}))
    return out


class EvaluatorActor:
    """Scores (candidate, example) pairs of its shard, `max_concurrency` LM calls at a time.

    As in `LocalEngine`, the bound is on LM calls (`synaray.lm.call_slots`), shared by all
    the calls this actor serves at once; twice as many samples run, so parsing and rewards
    never hold an LM slot.

    The constructor takes no object-store reference: the program payload and the data
    shards come with each call as `data = [payload_ref, {split: shard_ref}]` (nested refs,
    not resolved by Ray) and are fetched once per process. A restarted actor (its node lost)
    thus reloads them from the next call it serves, and Ray has no reason to warn that a
    restart could lose constructor arguments (ray-project/ray#53727). The rate limiter is
    found by name for the same reason.
    """

    def __init__(self, index: int, reward_config: Any, max_concurrency: int,
                 rate_limiter: str | None = None) -> None:
        self.index = index
        self.reward = deserialize_object(reward_config)
        self.pool: ProgramPool | None = None
        self.datasets: dict[str, Dataset] = {}
        self._load_lock = asyncio.Lock()
        self.max_concurrency = max_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._lm_slots: asyncio.Semaphore | None = None
        self.calls = 0
        if rate_limiter is not None:
            import ray

            from synaray.engines.ray.rate_limiter import install_rate_limiter
            from synaray.runs.ray_connect import NAMESPACE

            install_rate_limiter(ray.get_actor(rate_limiter, namespace=NAMESPACE))

    async def _load(self, data: list) -> None:
        """Fetch the program payload and the shards (`data`), once per process."""
        async with self._load_lock:
            if self.pool is not None:
                return
            payload_ref, shard_refs = data
            payload = await payload_ref
            self.datasets = {split: Dataset.from_arrow(await ref)
                             for split, ref in shard_refs.items()}
            self.pool = ProgramPool(payload)

    async def ready(self, data: list, keys: list | None = None) -> dict:
        install_keys(keys)
        await self._load(data)
        return {"index": self.index, "pid": os.getpid(),
                "rows": {k: len(v) for k, v in self.datasets.items()}}

    async def evaluate(self, requests: list[tuple[str, dict, tuple[str, ...], str]],
                       data: list, apply_batch: bool = False,
                       metric_splits: tuple[str, ...] = (),
                       keys: list | None = None) -> dict[str, Any]:
        """Score sub-requests of this shard (`data`: see the class); results as columns.

        `keys`: the API keys of the program's models (`synaray.lm.keys.shipped_keys`),
        given with every call so that a restarted actor has them too; kept in memory only.

        For sub-requests of a split in `metric_splits`, the program's metric states over
        them are computed here too, next to the predictions, and returned under
        "metric_states" as `[candidate_id, split, {metric_name: state}]` triples.
        """
        install_keys(keys)
        await self._load(data)
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(SAMPLES_PER_LM_SLOT * self.max_concurrency)
            self._lm_slots = asyncio.Semaphore(self.max_concurrency)
        self.calls += 1
        with limit_lm_calls(self._lm_slots):
            outcomes = await asyncio.gather(*(
                run_request(self.pool, self.reward, EvalRequest(cid, state, ids, split),
                            self.datasets[split].fetch(list(ids)), self._semaphore,
                            apply_batch=apply_batch, with_metrics=split in metric_splits)
                for cid, state, ids, split in requests))
        columns = results_to_columns([r for batch, _ in outcomes for r in batch])
        columns["metric_states"] = [[cid, split, states]
                                    for (cid, _, _, split), (_, states) in zip(
                                        requests, outcomes, strict=True)
                                    if states is not None]
        return columns
