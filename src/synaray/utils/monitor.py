"""Tracks the best value of one logged number: shared by callbacks (checkpoint, early
stopping) and the search loop's stop conditions, so it sits below both."""

from __future__ import annotations

import math

from synaray.errors import ConfigError

__all__ = ["Monitor"]


class Monitor:
    """Tracks the best value of `logs[monitor]`; `mode` "max", "min" or "auto".

    "auto" means "min" for names containing "loss" and "max" otherwise (rewards and most
    metrics are higher-is-better).

    Example:
        >>> m = Monitor("val_reward")
        >>> m.improved({"val_reward": 0.5}), m.improved({"val_reward": 0.4}), m.best
        (True, False, 0.5)
    """

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        if mode not in ("auto", "max", "min"):
            raise ConfigError(f"Invalid value for argument `mode`. Received: {mode!r}. "
                              "Expected one of 'auto', 'max', 'min'.")
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.min_delta = abs(min_delta)
        self.best: float | None = None

    def value(self, logs: dict | None) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value)

    def improved(self, logs: dict | None) -> bool:
        """Whether `logs` beat the best so far (and if so, remember it)."""
        value = self.value(logs)
        if value is None:
            return False
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best = value
            return True
        return False
