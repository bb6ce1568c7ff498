"""A semaphore that counts its holders: what an engine's LM-call bound let through."""

from __future__ import annotations

import asyncio


class CountingSemaphore(asyncio.Semaphore):
    """An `asyncio.Semaphore` that records how many acquired it and the most at once."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.acquired = 0
        self.holding = 0
        self.peak = 0

    async def acquire(self) -> bool:
        await super().acquire()
        self.acquired += 1
        self.holding += 1
        self.peak = max(self.peak, self.holding)
        return True

    def release(self) -> None:
        self.holding -= 1
        super().release()
