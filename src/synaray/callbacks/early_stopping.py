"""`EarlyStopping`: stop a fit when a monitored value stops improving."""

from __future__ import annotations

from typing import Any

from synaray.callbacks.callback import Callback
from synaray.errors import ConfigError
from synaray.utils.monitor import Monitor

__all__ = ["EarlyStopping"]


class EarlyStopping(Callback):
    """Stop after `patience` epochs without improvement of `monitor`.

    The rule runs where the search runs (`stop_condition()`, an `EarlyStop`): the run ends
    "finished" with reason "early stopping: ...".

    Args:
        monitor: the logged value to watch.
        patience: epochs without improvement tolerated (>= 0).
        min_delta: the smallest change that counts as an improvement.
        mode: "auto", "max" or "min".
        restore_best: at the end, put back the program state of the best epoch.

    Example:
        >>> EarlyStopping(monitor="val_reward", patience=2).patience
        2
    """

    def __init__(self, monitor: str = "val_reward", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True) -> None:
        super().__init__()
        if patience < 0:
            raise ConfigError(f"Invalid value for argument `patience`. Received: {patience}. "
                              "Expected an integer >= 0.")
        self.mode = mode
        self.monitor = Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best = restore_best
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict | None = None

    def stop_condition(self) -> Any:
        """The same rule as a stop condition (`EarlyStop`): the search itself stops (on
        RayEngine, in the optimizer actor, even with no driver left); this callback keeps
        `best_state`."""
        from synaray.trainers.stop_conditions import EarlyStop

        return EarlyStop(self.monitor.monitor, self.patience, self.monitor.min_delta,
                         self.mode)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor.improved(logs):
            self.wait = 0
            self.best_state = self.program.get_state()
            return
        self.wait += 1
        if self.wait > self.patience and self.stopped_epoch is None:
            # the search stops itself on the same rule (`stop_condition`); this only records
            # the epoch, for the user
            self.stopped_epoch = epoch

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best and self.best_state is not None:
            self.program.set_state(self.best_state)

    def get_config(self) -> dict:
        return {"monitor": self.monitor.monitor, "patience": self.patience,
                "min_delta": self.monitor.min_delta, "mode": self.mode,
                "restore_best": self.restore_best}
