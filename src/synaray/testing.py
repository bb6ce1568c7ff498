"""Test doubles: a language model answered by a Python function, with no server.

Example:
    >>> import asyncio
    >>> def answer(messages, schema):
    ...     return {"answer": messages[-1]["content"].upper()}
    >>> lm = FakeLanguageModel(answer)
    >>> asyncio.run(lm([{"role": "user", "content": "hi"}])).json
    {'answer': 'HI'}
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from synaray.lm.call_slots import lm_call_slot
from synaray.saving import deserialize_object, serialize_object
from synaray.utils.tracing import LMCallRecord, record_lm_call

__all__ = ["FakeLanguageModel"]

Handler = Callable[[list[dict], dict | None], Any]


class FakeLanguageModel:
    """A stand-in for `LanguageModel` whose answers come from `handler(messages, schema)`.

    The handler returns a dict (the structured answer), a str (parsed as JSON), or an
    exception instance or class (the call fails with that error, as a real failed call
    would: `ok=False`, nothing raised).

    Args:
        handler: the function that answers; a named, importable function if the model must
            be saved or sent to Ray workers.
        model: the model name reported in usage and traces.
        latency_s: seconds each call sleeps; with `jitter_s`, a random extra in
            [0, jitter_s) drawn from an RNG seeded by `seed` (completion order then varies).
        tokens_per_call: prompt and completion tokens reported per call.
    """

    def __init__(self, handler: Handler, model: str = "fake/model", latency_s: float = 0.0,
                 jitter_s: float = 0.0, seed: int | None = None,
                 tokens_per_call: int = 10) -> None:
        self.handler = handler
        self.model = model
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self.seed = seed
        self.tokens_per_call = tokens_per_call
        self.calls = 0
        self._rng = random.Random(seed)

    async def __call__(self, messages: list[dict], schema: dict | None = None,
                       data_model: Any = None, **kwargs: Any) -> Any:
        from synaray.lm.results import LMResult

        self.calls += 1
        delay = self.latency_s + (self._rng.random() * self.jitter_s if self.jitter_s else 0)
        if delay:
            async with lm_call_slot():  # an engine's bound on LM calls, as for the real one
                await asyncio.sleep(delay)
        if schema is None and data_model is not None:
            schema = data_model.get_schema()
        try:
            answer = self.handler(messages, schema)
            if isinstance(answer, type) and issubclass(answer, BaseException):
                answer = answer("fake failure")
            if isinstance(answer, BaseException):
                raise answer
            if isinstance(answer, str):
                answer = json.loads(answer)
            if data_model is not None:
                answer = data_model.model_validate(answer).model_dump(mode="json")
        except Exception as exc:  # a failed call is a result, as for the real model
            record_lm_call(LMCallRecord(model=self.model, ok=False, error=str(exc),
                                        error_type=type(exc).__name__))
            return LMResult(ok=False, json=None, text=None, error=str(exc),
                            error_type=type(exc).__name__, attempts=1)
        tokens = self.tokens_per_call
        record_lm_call(LMCallRecord(model=self.model, ok=True, prompt_tokens=tokens,
                                    completion_tokens=tokens, latency_s=delay))
        return LMResult(ok=True, json=answer, text=json.dumps(answer), error=None,
                        error_type=None, prompt_tokens=tokens, completion_tokens=tokens,
                        latency_s=delay, attempts=1)

    generate = __call__

    def get_config(self) -> dict:
        return {"handler": serialize_object(self.handler), "model": self.model,
                "latency_s": self.latency_s, "jitter_s": self.jitter_s, "seed": self.seed,
                "tokens_per_call": self.tokens_per_call}

    @classmethod
    def from_config(cls, config: dict) -> FakeLanguageModel:
        config = dict(config)
        config["handler"] = deserialize_object(config["handler"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<FakeLanguageModel model={self.model}>"
