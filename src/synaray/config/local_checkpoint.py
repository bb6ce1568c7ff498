"""`RunStorageCheckpoint`: a LocalEngine run keeps the same run folder as a RayEngine run.

After every generation and every epoch it writes, through `RunStorage` (a local folder or
a pyarrow URI), the files the optimizer actor writes under Ray: `optimizer_state.json`
(`{"step", "optimizer"}`), `best_program.json`, `status.json`, then `manifest.json`. So
`synaray status` reads either kind of run, `Program.load` reads the best program, and
`synaray resume` continues a local run as it does a Ray one. While this process holds the
run's lease (`synaray.engines.ray.run_lease`), a checkpoint refuses to write once another
run has taken the lease over.
"""

from __future__ import annotations

import time
from typing import Any

from synaray.callbacks import Callback

__all__ = ["RunStorageCheckpoint", "status_record"]

FILES = ["optimizer_state.json", "best_program.json", "status.json"]


def status_record(optimizer: Any, run_name: str, step: int) -> dict:
    """The live status of a run (the fields the optimizer actor writes to status.json)."""
    spent = optimizer.spent
    return {"run_name": run_name, "step": step, "epoch": optimizer.epoch,
            "epochs": optimizer.epochs, "generation": optimizer.generation,
            "total_generations": optimizer.epochs * optimizer.steps_per_epoch,
            "best_val_reward": optimizer.best_val_reward, "best_id": optimizer.best_id,
            "lm_calls": spent.lm_calls, "lm_failures": spent.lm_failures,
            "tokens": spent.tokens, "cost": spent.cost, "time_s": spent.time_s,
            "stop_reason": optimizer.stop_reason, "updated": time.time()}


class RunStorageCheckpoint(Callback):
    """Checkpoint a local fit into its run folder; with `resume`, restore from it.

    Args:
        store: the run's `RunStorage`.
        resume: hand the stored optimizer state to `fit` (which then continues it).

    Example:
        >>> import tempfile
        >>> from synaray.engines.ray.storage import RunStorage
        >>> RunStorageCheckpoint(RunStorage(tempfile.mkdtemp(), "demo")).step
        0
    """

    def __init__(self, store: Any, resume: bool = False) -> None:
        super().__init__()
        self.store = store
        self.resume = resume
        self.step = 0
        self._payload: dict | None = None

    def restore(self) -> dict | None:
        if not self.resume:
            return None
        saved = self.store.read_json("optimizer_state.json")
        self.step = int(saved.get("step", 0))
        return {"optimizer": saved["optimizer"]}

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._payload = self.program.to_payload()
        self._write()

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        self.step += 1
        self._write()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.step += 1
        self._write()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._write()

    def _write(self) -> None:
        lease = getattr(self.store, "lease", None)  # set when this run took the lease
        if lease is not None:
            lease.check()  # LeaseLostError: another run writes this folder now
        opt = self.optimizer
        self.store.write_json("optimizer_state.json",
                              {"step": self.step, "optimizer": opt.state_dict()})
        self.store.write_json("best_program.json",
                              {**(self._payload or {}), "state": opt.best().state})
        self.store.write_json("status.json", status_record(opt, self.store.run_name, self.step))
        self.store.write_manifest(self.step, FILES)
