"""`FewShotSearch`: what the few-shot optimizers share, written once.

The few-shot knobs (checked together, kept, saved in the config), the demo pool fed by
every fresh training result (bootstrapped demos, and labelled ones unless `use_labels` is
False), the failure notes of the current minibatch for reflection, demos drawn for a module
and the seeded choice of one item. `RandomFewShot`, `OMEGA` and `PopulationSearch` mix it
in with `Optimizer`.

Demo caps: a told result whose LM call failed because the prompt did not fit the model's
context window (`LMContextLengthError` in its error) caps the demos later drawn for the
module that failed at one fewer than the candidate showed there (k demos: at most k - 1,
floor 0). A cap only ever goes down; it is saved with the optimizer's state. The module
that failed is the one whose trace record has inputs but no outputs; a result without such
a record caps every module of the candidate that shows demos.

Example:
    >>> from synaray.optimizers import RandomFewShot
    >>> RandomFewShot(nb_max_examples=2).few_shot_config()["nb_max_examples"]
    2
"""

from __future__ import annotations

from typing import Any

from synaray.errors import LMContextLengthError
from synaray.optimizers.protocol import EvalResult
from synaray.optimizers.strategies.demos import DemoPool, draw_examples, fresh_results
from synaray.optimizers.strategies.knobs import check_few_shot
from synaray.optimizers.strategies.reflection import FailureLog
from synaray.utils.tracing import count_errors

__all__ = ["FewShotSearch"]

_CONTEXT_ERROR = LMContextLengthError.__name__

_KNOBS = ("use_labels", "nb_min_examples", "nb_max_examples", "sampling",
          "sampling_temperature")


class FewShotSearch:
    """Mixin of the few-shot optimizers (see the module docstring)."""

    demos: DemoPool
    failures: FailureLog | None = None
    demo_caps: dict[str, int]

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
        self.demo_caps = {}

    def setup(self, initial_state: dict, train: Any, val: Any = None, batch_size: int = 32,
              epochs: int = 1) -> None:
        """`Optimizer.setup`, with no demo cap learned yet."""
        self.demo_caps = {}
        super().setup(initial_state, train, val, batch_size=batch_size,  # type: ignore[misc]
                      epochs=epochs)

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
        for result in results:
            if count_errors(result.error, _CONTEXT_ERROR):
                self._cap_demos(result)
        fresh = fresh_results(self.table, results)
        for result in fresh:
            self.demos.add_result(result, self.label_of(result.example_id))
            if self.failures is not None and result.example_id in batch:
                self.failures.add(result)
        return fresh

    def _cap_demos(self: Any, result: EvalResult) -> None:
        """Lower the demo caps after `result`'s prompt overflowed the context window."""
        candidate = self.candidates.get(result.candidate_id)
        if candidate is None:
            return
        shown = {module: len(module_state.get("examples") or [])
                 for module, module_state in candidate.state.items()
                 if isinstance(module_state, dict) and module_state.get("examples")}
        failed = {r.get("module") for r in result.trace
                  if r.get("inputs") is not None and r.get("outputs") is None}
        for module in (failed & set(shown)) if failed else shown:
            self.demo_caps[module] = min(self.demo_caps.get(module, shown[module]),
                                         shown[module] - 1)

    def _draw_demos(self: Any, module: str) -> list[dict]:
        """Between `nb_min_examples` and `nb_max_examples` demos of `module` from the pool
        (at most the module's demo cap, when a prompt with more overflowed the context)."""
        nb_max = min(self.nb_max_examples, self.demo_caps.get(module, self.nb_max_examples))
        return draw_examples(self.demos, module, min(self.nb_min_examples, nb_max), nb_max,
                             self._selector, self.rng)

    def _within_caps(self, state: dict) -> bool:
        """No module of `state` shows more demos than its cap (`demo_caps`)."""
        return all(len(module_state.get("examples") or []) <= self.demo_caps[module]
                   for module, module_state in state.items()
                   if module in self.demo_caps and isinstance(module_state, dict))

    def _pick(self: Any, items: list[str]) -> str:
        """One of `items`, drawn with the search's RNG."""
        return items[int(self.rng.integers(len(items)))]

    def _pool_state(self) -> dict:
        """The demo pool and failure notes, for `extra_state`."""
        state = {"demos": self.demos.to_json(), "demo_caps": dict(self.demo_caps)}
        if self.failures is not None:
            state["failures"] = self.failures.to_json()
        return state

    def _load_pool_state(self, state: dict) -> None:
        self.demos = DemoPool.from_json(state.get("demos", {}))
        self.demo_caps = {str(m): int(k) for m, k in state.get("demo_caps", {}).items()}
        if self.failures is not None:
            self.failures = FailureLog.from_json(state.get("failures", {}))
