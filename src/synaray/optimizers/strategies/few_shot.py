"""`FewShotSearch`: what the few-shot optimizers share, written once.

The few-shot knobs (checked together, kept, saved in the config), the demo pool fed by
every fresh training result (bootstrapped demos, and labelled ones unless `use_labels` is
False), the failure notes of the current minibatch for reflection, demos drawn for a module
and the seeded choice of one item. `RandomFewShot`, `OMEGA` and `PopulationSearch` mix it
in with `Optimizer`.

Example:
    >>> from synaray.optimizers import RandomFewShot
    >>> RandomFewShot(nb_max_examples=2).few_shot_config()["nb_max_examples"]
    2
"""

from __future__ import annotations

from typing import Any

from synaray.optimizers.protocol import EvalResult
from synaray.optimizers.strategies.demos import DemoPool, draw_examples, fresh_results
from synaray.optimizers.strategies.knobs import check_few_shot
from synaray.optimizers.strategies.reflection import FailureLog

__all__ = ["FewShotSearch"]

_KNOBS = ("use_labels", "nb_min_examples", "nb_max_examples", "sampling",
          "sampling_temperature")


class FewShotSearch:
    """Mixin of the few-shot optimizers (see the module docstring)."""

    demos: DemoPool
    failures: FailureLog | None = None

    def __init__(self, nb_min_examples: int, nb_max_examples: int, sampling: str,
                 sampling_temperature: float, use_labels: bool, **search: Any) -> None:
        """Check and keep the few-shot knobs, start an empty demo pool; `search` goes to
        `Optimizer.__init__` (population_size, val_top_k, seed, budget, name)."""
        super().__init__(**search)
        self._selector = check_few_shot(nb_min_examples, nb_max_examples, sampling,
                                        sampling_temperature)
        values = (use_labels, nb_min_examples, nb_max_examples, sampling,
                  sampling_temperature)
        for knob, value in zip(_KNOBS, values, strict=True):
            setattr(self, knob, value)
        self.demos = DemoPool()

    def few_shot_config(self) -> dict:
        """The few-shot knobs as `get_config` saves them."""
        return {knob: getattr(self, knob) for knob in _KNOBS}

    def shown_examples(self: Any, cid: str) -> set[str]:
        """The training examples whose demos candidate `cid` shows (`Optimizer.unscored`
        does not score it on them)."""
        return self.demos.example_ids(self.candidates[cid].state)

    def _learn(self: Any, results: list[EvalResult], batch: set[str] | frozenset = frozenset(),
               ) -> list[EvalResult]:
        """Feed the fresh training results to the demo pool (and the failures of `batch`
        to the failure notes); returns them, in a canonical order."""
        fresh = fresh_results(self.table, results)
        for result in fresh:
            self.demos.add_result(result, self.label_of(result.example_id))
            if self.failures is not None and result.example_id in batch:
                self.failures.add(result)
        return fresh

    def _draw_demos(self: Any, module: str) -> list[dict]:
        """Between `nb_min_examples` and `nb_max_examples` demos of `module` from the pool."""
        return draw_examples(self.demos, module, self.nb_min_examples, self.nb_max_examples,
                             self._selector, self.rng)

    def _pick(self: Any, items: list[str]) -> str:
        """One of `items`, drawn with the search's RNG."""
        return items[int(self.rng.integers(len(items)))]

    def _pool_state(self) -> dict:
        """The demo pool and failure notes, for `extra_state`."""
        state = {"demos": self.demos.to_json()}
        if self.failures is not None:
            state["failures"] = self.failures.to_json()
        return state

    def _load_pool_state(self, state: dict) -> None:
        self.demos = DemoPool.from_json(state.get("demos", {}))
        if self.failures is not None:
            self.failures = FailureLog.from_json(state.get("failures", {}))
