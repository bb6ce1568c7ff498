"""`BackupAndRestore`: a killed fit resumes where it stopped, repeating no evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synaray.runs.callback import RunStorageCheckpoint
from synaray.runs.files import OPTIMIZER_STATE

__all__ = ["BackupAndRestore"]

STATE_FILE = OPTIMIZER_STATE


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
            parent, _, name = folder.rpartition("/")
            self._store = RunStorage(parent or ".", name)
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
