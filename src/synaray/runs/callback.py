"""`RunStorageCheckpoint`: a fit in this process (LocalEngine) checkpoints like the actor.

After the fit begins, every generation and every epoch it writes the run folder through the
one `Checkpointer` (`synaray.runs.checkpoint`), so `synaray status`, `synaray report`,
`Program.load` and `synaray resume` read a local run as they read a Ray one. It also says how
a fit ended in `status.json`: "finished" (the optimizer stopped on its own), "stopped" (a
callback set `program.stop_training`, e.g. EarlyStopping, or Ctrl-C) or "failed" (fit
raised), with the reason. `BackupAndRestore` is this callback on a plain folder.
"""

from __future__ import annotations

from typing import Any

from synaray.callbacks.callback import Callback
from synaray.runs.checkpoint import Checkpointer, load_checkpoint
from synaray.runs.status import RUNNING, STOPPED, STOPPED_BY_CALLBACK, ended_state

__all__ = ["RunStorageCheckpoint"]


class RunStorageCheckpoint(Callback):
    """Checkpoint a fit into its run folder; with `resume`, restore from it.

    Args:
        store: the run's `RunStorage`.
        resume: hand the stored checkpoint to `fit` (which then continues it).
        save_program_state: also store the program's state in each checkpoint (restored
            with it).

    Example:
        >>> import tempfile
        >>> from synaray.runs.storage import RunStorage
        >>> RunStorageCheckpoint(RunStorage(tempfile.mkdtemp(), "demo")).step
        0
    """

    def __init__(self, store: Any, resume: bool = False,
                 save_program_state: bool = False) -> None:
        super().__init__()
        self.store = store
        self.resume = resume
        self.save_program_state = save_program_state
        self.step = 0
        self.restored_from: dict | None = None
        self._checkpointer: Checkpointer | None = None

    @property
    def checkpointer(self) -> Checkpointer:
        """The run's checkpointer (made on first use)."""
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.store)
        return self._checkpointer

    def restore(self) -> dict | None:
        """The stored checkpoint as `fit` takes it (`{"optimizer", "program_state"}`), or
        None when not resuming or nothing is stored."""
        if not self.resume:
            return None
        checkpoint = load_checkpoint(self.store)
        if checkpoint is None:
            return None
        self.step = checkpoint.step
        self.restored_from = {"optimizer": checkpoint.optimizer,
                              "program_state": checkpoint.program_state}
        return self.restored_from

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.checkpointer.payload = self.program.to_payload()
        self._write()

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        self.step += 1
        self._write()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.step += 1
        self._write()

    def on_train_end(self, logs: dict | None = None) -> None:
        stopped = not self.optimizer.finished and getattr(self.program, "stop_training", False)
        self._write(*((STOPPED, STOPPED_BY_CALLBACK) if stopped else (RUNNING, None)))

    def on_train_error(self, error: BaseException) -> None:
        """Say in status.json how the fit ended; the last checkpoint stays as it was (the
        optimizer may be between `ask` and `tell`). Best effort: never hides `error`."""
        if self.optimizer is None:
            return
        state, reason = ended_state(error)
        try:
            self.checkpointer.write_status(self.optimizer, self.step, state, reason)
        except Exception:  # the lease was lost, or the storage is gone: keep `error`
            pass

    def _write(self, state: str = RUNNING, error: str | None = None) -> None:
        program_state = self.program.get_state() if self.save_program_state else None
        self.checkpointer.write(self.optimizer, self.step, program_state=program_state,
                                state=state, error=error)
