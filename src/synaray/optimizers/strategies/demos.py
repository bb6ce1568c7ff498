"""`DemoPool`: few-shot demos per module, harvested from the traces of rewarded predictions.

A result that earned a reward > 0 makes each module of its trace a candidate demo: the
module's inputs and outputs on that example. Demos are deduplicated per module by the
canonical JSON of their inputs; a demo keeps the highest reward seen for those inputs (and
the outputs that earned it), so better answers replace worse ones. Only training results
feed the pool: a validation example never leaks into a program being validated.

Example:
    >>> from synaray.optimizers.protocol import EvalResult
    >>> pool = DemoPool()
    >>> trace = [{"module": "gen", "inputs": {"q": "1"}, "outputs": {"a": "yes"}}]
    >>> pool.add_result(EvalResult("c1", "e1", "train", 1.0, trace=trace))
    1
    >>> pool.modules(), pool.size("gen")
    (['gen'], 1)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np

from synaray.data.schema_utils import canonical_json
from synaray.optimizers.protocol import TRAIN, EvalResult
from synaray.optimizers.score_table import ScoreTable
from synaray.optimizers.strategies.selectors import Selector
from synaray.rewards.common import best_alternatives

__all__ = ["DemoPool", "demo_key", "draw_examples", "fresh_results", "label_as_output"]


def demo_key(example: dict) -> str:
    """The identity of a demo: the canonical JSON of its inputs."""
    return canonical_json(example.get("inputs"))


def fresh_results(table: ScoreTable, results: Iterable[EvalResult],
                  split: str = TRAIN) -> list[EvalResult]:
    """Results of `split` that the table has not recorded yet, in a canonical order.

    Sorting by (candidate, example) makes what an optimizer learns from a batch independent
    of the order the engine returned it in.
    """
    fresh = [r for r in results if r.split == split
             and (r.candidate_id, r.split, r.example_id) not in table]
    return sorted(fresh, key=lambda r: (r.candidate_id, r.example_id))


def draw_examples(pool: DemoPool, module: str, nb_min: int, nb_max: int, selector: Selector,
                  rng: np.random.Generator) -> list[dict]:
    """k ~ uniform{nb_min..nb_max} demos of `module` (fewer if the pool is smaller)."""
    k = int(rng.integers(nb_min, nb_max + 1))
    return pool.sample(module, k, selector, rng)


def _diverse_picks(pool: list[dict], k: int, selector: Selector,
                   rng: np.random.Generator, output_keys: list[str] | None = None) -> list[int]:
    """k demos spread over distinct outputs: one per output in turn (the selector picks
    within an output, and the order of outputs is drawn), so a 3-shot prompt of a yes/no task
    shows both answers instead of three "yes". `output_keys`: the canonical JSON of each
    demo's outputs, when the caller has it already."""
    if output_keys is None:
        output_keys = [canonical_json(demo["outputs"]) for demo in pool]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(output_keys):
        groups.setdefault(key, []).append(i)
    if len(groups) <= 1:
        return selector.select([d["reward"] for d in pool], k, rng)
    order = [list(groups.values())[int(j)] for j in rng.permutation(len(groups))]
    picks: list[int] = []
    while len(picks) < min(k, len(pool)):
        for members in order:
            left = [i for i in members if i not in picks]
            if left and len(picks) < k:
                chosen = selector.select([pool[i]["reward"] for i in left], 1, rng)
                picks.append(left[chosen[0]])
    return picks


def label_as_output(label: dict, outputs: dict) -> dict:
    """The expected output `label` in the shape of a module's `outputs`, for a demo.

    A label field holding a non-empty list of strings (accepted answers) where the module
    wrote a single string becomes the first of them; other fields are kept as they are.

    Example:
        >>> label_as_output({"answer": ["Denver Broncos", "Broncos"]}, {"answer": "Broncos"})
        {'answer': 'Denver Broncos'}
    """
    # the rewards' rule for accepted answers, with every alternative scoring alike: the first
    return best_alternatives(label, outputs, score=lambda alternative, output: 0.0)

class DemoPool:
    """Demos per module: `{"inputs", "outputs", "reward", "example_id"}` records."""

    def __init__(self) -> None:
        self._demos: dict[str, list[dict]] = {}
        self._index: dict[str, dict[str, int]] = {}
        # the canonical JSON of each demo's outputs, in pool order: a draw groups demos by
        # output without serialising the pool again (it did, once per draw)
        self._output_keys: dict[str, list[str]] = {}

    def add_result(self, result: EvalResult, label: dict | None = None) -> int:
        """Harvest a result's trace; returns the demos added or improved.

        A result with reward > 0 gives each module its (inputs, outputs) as a demo. With the
        example's expected output `label`, the module whose outputs have exactly the label's
        keys (the one that answers) also gets (inputs, label) as a demo whatever the reward,
        with reward 1.0: a labelled demo. Without labels, a model that always answers "yes"
        would only ever contribute "yes" demos. A label field that lists accepted answers
        where the module writes one string shows the first of them (`label_as_output`).
        """
        changed = 0
        for record in result.trace:
            if record.get("inputs") is None:
                continue
            if label is not None and isinstance(record.get("outputs"), dict) \
                    and set(record["outputs"]) == set(label):
                changed += self.add(record["module"], record["inputs"],
                                    label_as_output(label, record["outputs"]), 1.0,
                                    result.example_id)
            elif result.reward > 0 and record.get("outputs") is not None:
                changed += self.add(record["module"], record["inputs"], record["outputs"],
                                    float(result.reward), result.example_id)
        return changed

    def add(self, module: str, inputs: dict, outputs: dict, reward: float,
            example_id: str | None = None) -> int:
        """Add one demo (or improve the known one with the same inputs); 1 if changed."""
        demo = {"inputs": copy.deepcopy(inputs), "outputs": copy.deepcopy(outputs),
                "reward": reward, "example_id": example_id}
        demos = self._demos.setdefault(module, [])
        index = self._index.setdefault(module, {})
        output_keys = self._output_keys.setdefault(module, [])
        key = demo_key(demo)
        if key in index:
            if reward <= demos[index[key]]["reward"]:
                return 0
            demos[index[key]] = demo
            output_keys[index[key]] = canonical_json(demo["outputs"])
            return 1
        index[key] = len(demos)
        demos.append(demo)
        output_keys.append(canonical_json(demo["outputs"]))
        return 1

    def modules(self) -> list[str]:
        """Modules that have at least one demo, sorted."""
        return sorted(m for m, demos in self._demos.items() if demos)

    def size(self, module: str) -> int:
        return len(self._demos.get(module, []))

    def __len__(self) -> int:
        return sum(len(demos) for demos in self._demos.values())

    def demos(self, module: str) -> list[dict]:
        return list(self._demos.get(module, []))

    def sample(self, module: str, k: int, selector: Selector, rng: np.random.Generator,
               exclude: Iterable[dict] = ()) -> list[dict]:
        """Up to k distinct demos of `module` as `{"inputs", "outputs"}` examples.

        Demos whose inputs match an example in `exclude` are not drawn.
        """
        index = self._index.get(module, {})
        skip = {index[key] for key in map(demo_key, exclude) if key in index}
        kept = [n for n in range(len(self._demos.get(module, []))) if n not in skip]
        pool = [self._demos[module][n] for n in kept]
        keys = [self._output_keys[module][n] for n in kept]
        picks = _diverse_picks(pool, k, selector, rng, keys)
        return [{"inputs": copy.deepcopy(pool[i]["inputs"]),
                 "outputs": copy.deepcopy(pool[i]["outputs"])} for i in picks]

    def example_ids(self, state: dict) -> set[str]:
        """The examples the demos of a program state were harvested from (as far as this
        pool knows them): a program shown one of them would see its own answer.

        Example:
            >>> pool = DemoPool()
            >>> pool.add("gen", {"q": "1"}, {"a": "yes"}, 1.0, "e1")
            1
            >>> pool.example_ids({"gen": {"examples": [{"inputs": {"q": "1"}}]}})
            {'e1'}
        """
        ids: set[str] = set()
        for module, module_state in state.items():
            index = self._index.get(module)
            if not index or not isinstance(module_state, dict):
                continue
            for example in module_state.get("examples") or []:
                at = index.get(demo_key(example))
                if at is not None and self._demos[module][at].get("example_id") is not None:
                    ids.add(str(self._demos[module][at]["example_id"]))
        return ids

    def to_json(self) -> dict:
        return copy.deepcopy(self._demos)

    @classmethod
    def from_json(cls, data: dict) -> DemoPool:
        pool = cls()
        for module, demos in data.items():
            pool._demos[module] = copy.deepcopy(demos)
            pool._index[module] = {demo_key(d): n for n, d in enumerate(demos)}
            pool._output_keys[module] = [canonical_json(d["outputs"]) for d in demos]
        return pool

    def __repr__(self) -> str:
        return f"<DemoPool modules={len(self._demos)} demos={len(self)}>"
