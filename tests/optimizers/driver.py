"""A synthetic engine and the ask/tell driver that optimizer tests run optimizers with.

The "program" is a pure function `reward_fn(state, x, y) -> (reward, outputs)` of the
candidate state and one example, so no model runs; it may return a `Failure` instead, a
failed LM call (the result an engine builds for it: reward 0, no prediction, the error, the
modules' outputs None). The engine checks the DESIGN promise that nothing is scored twice:
a (candidate, split, example) it already scored fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import synaray
from synaray.data import Dataset
from synaray.optimizers import EvalRequest, EvalResult, candidate_id
from synaray.saving import register_synaray_serializable


@dataclass(frozen=True)
class Failure:
    """What a `reward_fn` returns for an example whose LM call failed: `error` is the text
    an engine's result carries (`"<error type>: <message>"`, see `Trace.errors`)."""

    error: str


RewardFn = Callable[[dict, dict, dict], "tuple[float, dict] | Failure"]
SEED_STATE = {"generator": {"instructions": None, "examples": []}}
KEY_PHRASE = "multiple of 3"


class Number(synaray.DataModel):
    q: str


class Label(synaray.DataModel):
    answer: str


def make_dataset(n: int, prefix: str, start: int = 0) -> Dataset:
    """`n` numbers; the answer is "no" for multiples of 3 and "yes" otherwise."""
    numbers = range(start, start + n)
    return Dataset([f"{prefix}{i}" for i in numbers], [Number(q=str(i)) for i in numbers],
                   [Label(answer="no" if i % 3 == 0 else "yes") for i in numbers])


def thirds(state: dict, x: dict, y: dict) -> tuple[float, dict]:
    """Right on multiples of 3; right everywhere once a module knows the rule.

    A module knows it when its instructions mention "multiple of 3" or when it holds at
    least two few-shot examples. Otherwise it always answers "no".
    """
    knows = any(KEY_PHRASE in (m.get("instructions") or "") or len(m.get("examples") or []) >= 2
                for m in state.values())
    answer = y["answer"] if knows or int(x["q"]) % 3 == 0 else "no"
    return (1.0 if answer == y["answer"] else 0.0), {"answer": answer}


class SyntheticEngine:
    """Scores requests with `reward_fn`; fails on any pair scored twice."""

    def __init__(self, reward_fn: RewardFn, datasets: dict[str, Dataset],
                 lm_calls_per_result: int = 1) -> None:
        self.reward_fn = reward_fn
        self.datasets = datasets
        self.lm_calls_per_result = lm_calls_per_result
        self.seen: set[tuple[str, str, str]] = set()

    async def evaluate(self, requests: list[EvalRequest]) -> list[EvalResult]:
        results = []
        for request in requests:
            assert candidate_id(request.state) == request.candidate_id
            rows = self.datasets[request.split].fetch(list(request.example_ids))
            for example_id, (x, y) in zip(request.example_ids, rows, strict=True):
                key = (request.candidate_id, request.split, example_id)
                assert key not in self.seen, f"scored twice: {key}"
                self.seen.add(key)
                results.append(self._result(request, example_id, x.get_json(), y.get_json()))
        return results

    def _result(self, request: EvalRequest, example_id: str, x: dict, y: dict) -> EvalResult:
        scored = self.reward_fn(request.state, x, y)
        if isinstance(scored, Failure):
            trace = [{"module": m, "inputs": x, "outputs": None} for m in sorted(request.state)]
            return EvalResult(request.candidate_id, example_id, request.split, 0.0,
                              error=scored.error, trace=trace,
                              lm_calls=self.lm_calls_per_result,
                              lm_failures=self.lm_calls_per_result)
        reward, outputs = scored
        trace = [{"module": m, "inputs": x, "outputs": outputs} for m in sorted(request.state)]
        return EvalResult(request.candidate_id, example_id, request.split, reward,
                          y_pred=outputs, trace=trace, lm_calls=self.lm_calls_per_result,
                          prompt_tokens=5, completion_tokens=5)


async def drive(optimizer: Any, engine: SyntheticEngine, max_rounds: int | None = None) -> int:
    """Run the ask/tell loop until the optimizer finishes (or `max_rounds`); rounds run."""
    rounds = 0
    while not optimizer.finished and (max_rounds is None or rounds < max_rounds):
        requests = optimizer.ask()
        results = await engine.evaluate(requests) if requests else []
        await optimizer.tell(results)
        rounds += 1
        assert rounds < 10_000, "the search does not end"
    return rounds


def setup(optimizer: Any, n_train: int = 24, n_val: int = 12, batch_size: int = 6,
          epochs: int = 2, state: dict | None = None,
          reward_fn: RewardFn = thirds) -> SyntheticEngine:
    """Set the optimizer up on the synthetic task; returns the engine to drive it with."""
    train, val = make_dataset(n_train, "t"), make_dataset(n_val, "v", start=1000)
    optimizer.setup(json.loads(json.dumps(state or SEED_STATE)), train, val,
                    batch_size=batch_size, epochs=epochs)
    return SyntheticEngine(reward_fn, {"train": train, "val": val})


def seed_val_reward(reward_fn: RewardFn = thirds, n_val: int = 12,
                    state: dict | None = None) -> float:
    val = make_dataset(n_val, "v", start=1000)
    rewards = [reward_fn(state or SEED_STATE, x.get_json(), y.get_json())[0]
               for x, y in val.fetch(val.ids)]
    return sum(rewards) / len(rewards)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# --- fake models with configs (registered so they round-trip by name) ----------------------
@register_synaray_serializable(package="tests")
def rule_writer(messages: list[dict], schema: dict | None) -> dict:
    """A reflection LM that always proposes instructions stating the rule."""
    return {"instructions": f"Answer no for a {KEY_PHRASE}, else yes."}


@register_synaray_serializable(package="tests")
def echo_writer(messages: list[dict], schema: dict | None) -> dict:
    """Proposes a new instruction derived from the prompt (deterministic, varied)."""
    digest = sum(ord(c) for c in messages[-1]["content"]) % 997
    return {"instructions": f"Think step by step (variant {digest})."}


@register_synaray_serializable(package="tests")
def broken_writer(messages: list[dict], schema: dict | None) -> Any:
    """Every call fails."""
    return RuntimeError("model down")


@register_synaray_serializable(package="tests")
class FakeEmbeddingModel:
    """Embeds a text as counts of a few marker words (deterministic); can fail on demand."""

    WORDS = ("step", "rule", "yes", "no", "think", "answer")

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    async def __call__(self, texts: list[str]) -> dict:
        self.calls += 1
        if self.fail:
            raise RuntimeError("embedding service down")
        return {"embeddings": [[float(t.lower().count(w)) + 0.1 for w in self.WORDS]
                               for t in texts]}

    def get_config(self) -> dict:
        return {"fail": self.fail}

    @classmethod
    def from_config(cls, config: dict) -> FakeEmbeddingModel:
        return cls(**config)
