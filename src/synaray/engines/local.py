"""`LocalEngine`: evaluations in this process with asyncio, LM calls bounded."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from synaray.engines.engine import Engine
from synaray.engines.evaluation import SAMPLES_PER_LM_SLOT, ProgramPool, run_request
from synaray.errors import ConfigError
from synaray.lm.call_slots import limit_lm_calls
from synaray.optimizers.protocol import EvalRequest, EvalResult

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Run every request in-process, at most `max_concurrency` LM calls at a time.

    The bound is on LM calls (`synaray.lm.call_slots`), shared by concurrent `evaluate`
    calls and by the optimizer's own calls (`lm_call_scope`), not on samples: up to
    `SAMPLES_PER_LM_SLOT * max_concurrency` samples run at once, so while one sample parses
    its answer or computes its reward, another one's request is already out. Results are
    returned in request order and example order, whatever order the LM calls complete in,
    so a search is reproducible.

    Args:
        max_concurrency: LM calls in flight at once (>= 1), over all the requests of all
            running `evaluate` calls, including LM calls made by rewards and the
            optimizer's proposals.

    Example:
        >>> engine = LocalEngine(max_concurrency=8)
        >>> engine.state.value
        'unstarted'
    """

    def __init__(self, max_concurrency: int = 16) -> None:
        super().__init__()
        if max_concurrency < 1:
            raise ConfigError(f"Invalid value for argument `max_concurrency`. Received: "
                              f"{max_concurrency}. Expected an integer >= 1.")
        self.max_concurrency = max_concurrency

    async def _start(self, program: Any, reward: Any, datasets: dict[str, Any]) -> None:
        self.pool = ProgramPool(program.to_payload())
        self.reward = reward
        self.datasets = datasets
        self.metrics = list(getattr(program, "metrics", None) or [])
        # one bound for every evaluate() running at once (a steady-state search)
        self._lm_slots = asyncio.Semaphore(self.max_concurrency)
        self._samples = asyncio.Semaphore(SAMPLES_PER_LM_SLOT * self.max_concurrency)

    def lm_call_scope(self) -> contextlib.AbstractContextManager:
        return limit_lm_calls(getattr(self, "_lm_slots", None))

    async def _evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        samples = self._samples
        with limit_lm_calls(self._lm_slots):
            outcomes = await asyncio.gather(*(
                run_request(self.pool, self.reward, request,
                            self.datasets[request.split].fetch(list(request.example_ids)),
                            samples, with_metrics=request.split in self.metric_splits,
                            on_result=lambda result: self._report([result]))
                for request in requests))
        self._fold_metric_states([(request.candidate_id, request.split, states)
                                  for request, (_, states) in zip(requests, outcomes, strict=True)
                                  if states is not None])
        return [result for batch, _ in outcomes for result in batch]

    def __repr__(self) -> str:
        return f"<LocalEngine max_concurrency={self.max_concurrency} state={self.state.value}>"
