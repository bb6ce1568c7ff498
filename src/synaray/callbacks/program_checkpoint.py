"""`ProgramCheckpoint`: save the program when a monitored value improves."""

from __future__ import annotations

from pathlib import Path

from synaray.callbacks.callback import Callback
from synaray.utils.monitor import Monitor

__all__ = ["ProgramCheckpoint"]


class ProgramCheckpoint(Callback):
    """Save the program (JSON, atomically) at the end of an epoch.

    Args:
        filepath: where to save; may contain `{epoch}` (1-based), e.g. "ckpt/e{epoch}.json".
        monitor: the logged value to watch ("val_reward", "val_f1_score", ...).
        mode: "auto", "max" or "min".
        save_best_only: save only when `monitor` improved (otherwise every epoch).

    Example:
        >>> ProgramCheckpoint("best.json", monitor="val_reward").save_best_only
        True
    """

    def __init__(self, filepath: str | Path, monitor: str = "val_reward", mode: str = "auto",
                 save_best_only: bool = True, verbose: bool = False) -> None:
        super().__init__()
        self.filepath = str(filepath)
        self.monitor = Monitor(monitor, mode)
        self.save_best_only = save_best_only
        self.verbose = verbose
        self.saved: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        improved = self.monitor.improved(logs)
        if self.save_best_only and not improved:
            return
        path = self.filepath.format(epoch=epoch + 1)
        self.program.save(path)
        self.saved.append(path)
        if self.verbose:
            print(f"ProgramCheckpoint: epoch {epoch + 1} {self.monitor.monitor}="
                  f"{self.monitor.value(logs)}, saved {path}")

    def get_config(self) -> dict:
        return {"filepath": self.filepath, "monitor": self.monitor.monitor,
                "save_best_only": self.save_best_only}
