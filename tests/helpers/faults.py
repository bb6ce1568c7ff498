"""Deterministic server faults for the loopback OpenAI stub.

`FlakyHandler` answers chat requests like a model would (through `answer(messages)`), but a
seeded share of the requests fails with HTTP 500 or 429. The draw depends only on the
request's messages and on how many times the server has already seen those messages, never
on arrival order, so the same run fails the same calls whatever the concurrency. Every
status the server sent is kept per distinct request, so a test can tell retried calls from
calls that failed for good.

Example:
    >>> handler = FlakyHandler(lambda messages: {"answer": "ok"}, p500=1.0, p429=0.0)
    >>> handler("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}).status
    500
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable

from helpers.openai_stub import StubReply

__all__ = ["FlakyHandler", "message_key"]


def message_key(body: dict) -> str:
    """A stable digest of a chat request's messages (what decides the answer)."""
    return hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()


class FlakyHandler:
    """An `OpenAIStub` handler: answers via `answer`, fails a seeded share of the requests.

    Args:
        answer: `answer(messages) -> dict`, the JSON answer of a successful request.
        p500: probability that a request gets HTTP 500.
        p429: probability that a request gets HTTP 429 (with `Retry-After: 0`).
        seed: the seed of the per-request draws.
    """

    def __init__(self, answer: Callable[[list[dict]], dict], p500: float = 0.2,
                 p429: float = 0.1, seed: int = 0) -> None:
        self.answer = answer
        self.p500 = p500
        self.p429 = p429
        self.seed = seed
        self.enabled = True
        self.statuses: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def draw(self, key: str, attempt: int) -> int:
        """The status of the `attempt`-th request (0-based) with messages digest `key`."""
        if not self.enabled:
            return 200
        value = random.Random(f"{self.seed}:{key}:{attempt}").random()
        if value < self.p500:
            return 500
        if value < self.p500 + self.p429:
            return 429
        return 200

    def __call__(self, path: str, body: dict) -> StubReply:
        key = message_key(body)
        with self._lock:
            seen = self.statuses.setdefault(key, [])
            status = self.draw(key, len(seen))
            seen.append(status)
        if status == 429:
            return StubReply(status=429, headers={"Retry-After": "0"})
        if status != 200:
            return StubReply(status=status)
        return StubReply(json.dumps(self.answer(body["messages"])))

    # -- what the server saw -------------------------------------------------------------
    def counts(self) -> dict[int, int]:
        """Requests per HTTP status."""
        out: dict[int, int] = {}
        with self._lock:
            for seen in self.statuses.values():
                for status in seen:
                    out[status] = out.get(status, 0) + 1
        return out

    def never_answered(self) -> list[str]:
        """Digests of the distinct requests that never got a 200."""
        with self._lock:
            return [k for k, seen in self.statuses.items() if 200 not in seen]

    def answered(self) -> list[str]:
        """Digests of the distinct requests that got a 200 at least once."""
        with self._lock:
            return [k for k, seen in self.statuses.items() if 200 in seen]
