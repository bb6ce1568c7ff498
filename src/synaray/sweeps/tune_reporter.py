"""`TuneReporter`: a fit callback that reports each generation of a trial to Ray Tune."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from synaray.callbacks.callback import Callback

__all__ = ["TuneReporter"]

#: Generation and epoch log keys passed on to Tune (when present and numeric).
REPORTED_KEYS = ("epoch", "generation", "reward", "population_reward", "val_reward",
                 "lm_calls")


def _clean(logs: dict) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for key in REPORTED_KEYS:
        value = logs.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        out[key] = value
    return out


class TuneReporter(Callback):
    """Report `reward`, `val_reward` (once known) and `lm_calls` to Tune after every
    generation, and again at the end of every epoch (when validation scores arrive).

    The last `val_reward` seen is repeated in later reports, so a trial's latest report
    always carries its best validation reward so far.

    Args:
        report: the function that sends a metrics dict; default `ray.tune.report`
            (so the callback only works inside a Tune trial unless you pass one).

    Example:
        >>> sent = []
        >>> reporter = TuneReporter(report=sent.append)
        >>> reporter.on_batch_end(1, {"generation": 1, "reward": 0.5, "lm_calls": 8})
        >>> reporter.on_epoch_end(0, {"generation": 1, "reward": 0.5, "val_reward": 0.4,
        ...                           "lm_calls": 12})
        >>> sent[-1]["val_reward"], sent[-1]["lm_calls"]
        (0.4, 12)
    """

    def __init__(self, report: Callable[[dict], Any] | None = None) -> None:
        super().__init__()
        self._report = report
        self.last: dict[str, float | int] = {}
        self.reports = 0

    def _send(self, logs: dict | None) -> None:
        metrics = dict(self.last)
        metrics.update(_clean(logs or {}))
        self.last = metrics
        self.reports += 1
        if self._report is None:
            from ray import tune

            self._report = tune.report
        self._report(dict(metrics))

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        self._send(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._send(logs)
