"""`BackupAndRestore`: a killed fit resumes where it stopped, repeating no evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from synaray.callbacks.callback import Callback
from synaray.errors import CheckpointError
from synaray.utils.atomic_files import atomic_write_text

__all__ = ["BackupAndRestore"]

STATE_FILE = "optimizer_state.json"


class BackupAndRestore(Callback):
    """Write the optimizer's whole state after every generation; a new fit resumes from it.

    The state holds the score table, so a resumed fit scores no (candidate, example) pair
    again, plus the RNG, sampler and budget, so it continues exactly as the killed run would
    have. The file is replaced atomically: a kill mid-write leaves the previous state.

    Args:
        backup_dir: a folder for the state file.
        delete_checkpoint: remove the backup once the fit completes.

    Example:
        >>> BackupAndRestore("backup/").state_path.name
        'optimizer_state.json'
    """

    def __init__(self, backup_dir: str | Path, delete_checkpoint: bool = True) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self.restored_from: dict | None = None

    @property
    def state_path(self) -> Path:
        return self.backup_dir / STATE_FILE

    def restore(self) -> dict | None:
        if not self.state_path.exists():
            return None
        try:
            payload = json.loads(self.state_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"Backup {self.state_path} is not valid JSON: {exc}") from exc
        self.restored_from = payload
        return payload

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        self._save()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._save()

    def _save(self) -> None:
        payload = {"optimizer": self.optimizer.state_dict(),
                   "program_state": self.program.get_state()}
        atomic_write_text(self.state_path, json.dumps(payload))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint:
            self.state_path.unlink(missing_ok=True)

    def get_config(self) -> dict:
        return {"backup_dir": str(self.backup_dir), "delete_checkpoint": self.delete_checkpoint}
