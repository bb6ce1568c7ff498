"""Checkpoints of a fit in this process: `RunStorageCheckpoint` and `BackupAndRestore`.

`RunStorageCheckpoint` writes a LocalEngine run's folder through the run layer's one
checkpointer (`synaray.runs.checkpoint`), after the fit begins, every generation and every
epoch, so `synaray status`, `synaray report`, `Program.load` and `synaray resume` read a
local run as they read a Ray one. It also says how a fit ended in `status.json`: "finished"
(the optimizer stopped on its own), "stopped" (a callback set `program.stop_training`, e.g.
EarlyStopping, or Ctrl-C) or "failed" (fit raised), with the reason.

`BackupAndRestore` is the same on a plain folder: a killed fit resumes where it stopped,
repeating no evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synaray.callbacks.callback import Callback
from synaray.runs.checkpoint import Checkpointer, load_checkpoint
from synaray.runs.files import OPTIMIZER_STATE
from synaray.runs.status import RUNNING, STOPPED, STOPPED_BY_CALLBACK, ended_state

__all__ = ["BackupAndRestore", "RunStorageCheckpoint"]

STATE_FILE = OPTIMIZER_STATE


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


class BackupAndRestore(RunStorageCheckpoint):
    """Write the optimizer's whole state after every generation; a new fit resumes from it.

    The state holds the score table, so a resumed fit scores no (candidate, example) pair
    again, plus the RNG, sampler and budget, so it continues exactly as the killed run would
    have. The folder gets the files of any run folder, through the one checkpointer
    (`synaray.runs.checkpoint`): `optimizer_state.json` (with the program's state),
    `best_program.json`, `status.json` (also "failed" or "stopped" when the fit ends early)
    and `manifest.json`, each replaced atomically: a kill mid-write leaves the previous
    checkpoint. Files written by earlier versions (`{"optimizer", "program_state"}`) are
    read as well.

    Args:
        backup_dir: a folder for the checkpoint (a local path or a pyarrow URI).
        delete_checkpoint: remove the checkpoint once the fit completes.

    Example:
        >>> BackupAndRestore("backup/").state_path.name
        'optimizer_state.json'
    """

    def __init__(self, backup_dir: str | Path, delete_checkpoint: bool = True) -> None:
        super().__init__(None, resume=True, save_program_state=True)
        self.backup_dir = Path(backup_dir) if "://" not in str(backup_dir) else backup_dir
        self.delete_checkpoint = delete_checkpoint

    @property
    def state_path(self) -> Path:
        return Path(str(self.backup_dir)) / STATE_FILE

    @property
    def store(self) -> Any:
        """The folder's `RunStorage` (created on first use: making the callback writes
        nothing)."""
        if self._store is None:
            from synaray.runs.storage import RunStorage

            folder = str(self.backup_dir).rstrip("/")
            parent, slash, name = folder.rpartition("/")
            self._store = RunStorage(parent or slash or ".", name)
        return self._store

    @store.setter
    def store(self, value: Any) -> None:
        self._store = value

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint:
            self.checkpointer.delete()
        else:
            super().on_train_end(logs)

    def get_config(self) -> dict:
        return {"backup_dir": str(self.backup_dir), "delete_checkpoint": self.delete_checkpoint}
