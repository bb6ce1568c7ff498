"""The one checkpointer of a run, and its loader: one schema, whoever writes it.

The Ray optimizer actor, a LocalEngine run of `synaray fit` and the `BackupAndRestore`
callback all write through `Checkpointer`, into a `RunStorage` folder:

    optimizer_state.json   {"format": "synaray.checkpoint", "version": 1, "step": <int>,
                            "optimizer": <Optimizer.state_dict()>,
                            "program_state": <Program.get_state()> or null}
    best_program.json      the program's payload with the best candidate's state
    status.json            `synaray.runs.status.build_status`
    manifest.json          last: run name, step, the files above

Each file is replaced atomically (`RunStorage.write_bytes`), and the manifest goes last, so
a reader (or a restart) sees the previous checkpoint or the new one, never half of one.
Before it writes anything the checkpointer checks the run's lease (`synaray.runs.lease`):
once another run took the name over it raises `LeaseLostError` and writes nothing.

`load_checkpoint` reads the file back. Files of earlier versions are read too: the actor's
and `RunStorageCheckpoint`'s `{"step", "optimizer"}` and `BackupAndRestore`'s
`{"optimizer", "program_state"}` (step 0). A file of another format or a newer version is a
`CheckpointError` that names the file and what was expected.

Example:
    >>> import tempfile
    >>> from synaray.runs.storage import RunStorage
    >>> store = RunStorage(tempfile.mkdtemp(), "demo")
    >>> store.write_json("optimizer_state.json", {"step": 3, "optimizer": {"epoch": 1}})
    >>> load_checkpoint(store).step
    3
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from synaray.errors import CheckpointError
from synaray.runs.files import BEST_PROGRAM, CHECKPOINT_FILES, MANIFEST, OPTIMIZER_STATE, STATUS
from synaray.runs.status import RUNNING, build_status, status_from_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "Checkpointer",
    "load_checkpoint",
    "stored_status",
]

CHECKPOINT_FORMAT = "synaray.checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """A checkpoint as read back: the step it was written after, the optimizer's state, and
    the program's state when the writer saved one (`BackupAndRestore`)."""

    step: int
    optimizer: dict[str, Any]
    program_state: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": self.step,
                "optimizer": self.optimizer, "program_state": self.program_state}


def parse_checkpoint(saved: Any, source: str) -> Checkpoint:
    """A checkpoint from the content of `optimizer_state.json` (`source` names it in errors).

    Raises:
        CheckpointError: not a checkpoint, another format, or a newer version.
    """
    if not isinstance(saved, dict) or not isinstance(saved.get("optimizer"), dict):
        raise CheckpointError(f"{source} is not a synaray checkpoint: expected a JSON object "
                              "with an 'optimizer' object (the optimizer's state).")
    fmt = saved.get("format", CHECKPOINT_FORMAT)
    version = saved.get("version", CHECKPOINT_VERSION)
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source} has format {fmt!r}; expected {CHECKPOINT_FORMAT!r}.")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{source} has version {version!r}; this synaray reads "
                              f"checkpoint versions up to {CHECKPOINT_VERSION} (upgrade it).")
    step = saved.get("step", 0)
    if not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{source}: invalid 'step' {step!r}; expected an integer >= 0.")
    program_state = saved.get("program_state")
    return Checkpoint(step, saved["optimizer"],
                      program_state if isinstance(program_state, dict) else None)


def load_checkpoint(store: Any) -> Checkpoint | None:
    """The checkpoint in a run folder, or None when it holds none.

    Raises:
        CheckpointError: unreadable, or not a checkpoint this version reads.
    """
    if not store.exists(OPTIMIZER_STATE):
        return None
    return parse_checkpoint(store.read_json(OPTIMIZER_STATE), store.display_uri(OPTIMIZER_STATE))


def stored_status(store: Any, checkpoint: Checkpoint | None = None) -> dict[str, Any]:
    """A run's status: its `status.json`, else derived from its checkpoint (`checkpoint`, or
    the one in `store`, read through `load_checkpoint`).

    Raises:
        CheckpointError: neither file, or an unreadable checkpoint.
    """
    if store.exists(STATUS):
        return store.read_json(STATUS)
    checkpoint = checkpoint or load_checkpoint(store)
    if checkpoint is None:
        raise CheckpointError(f"Run {store.run_name!r} has neither {STATUS} nor "
                              f"{OPTIMIZER_STATE}.")
    return status_from_state(checkpoint.optimizer, store.run_name,
                             store.modified(OPTIMIZER_STATE))


class Checkpointer:
    """Write a run's checkpoint and live status; see the module docstring for the files.

    Args:
        store: the run's `RunStorage`.
        payload: the program's payload (`Program.to_payload()`); `best_program.json` is that
            with the best candidate's state. None: no best program is written until
            `payload` is set.
        lease: the `RunLease` to check before each write (default: the one this process
            holds on the run, `store.lease`, if any).

    Example:
        >>> import tempfile
        >>> from synaray.runs.storage import RunStorage
        >>> Checkpointer(RunStorage(tempfile.mkdtemp(), "demo")).started > 0
        True
    """

    def __init__(self, store: Any, payload: dict | None = None, lease: Any = None) -> None:
        self.store = store
        self.payload = payload
        self._lease = lease
        self.started = self._first_start()

    def _first_start(self) -> float:
        """When the run first started: kept across restarts and resumes (from status.json)."""
        if self.store.exists(STATUS):
            try:
                return float(self.store.read_json(STATUS).get("started") or time.time())
            except Exception:  # an unreadable status is rewritten at the next step
                pass
        return time.time()

    @property
    def lease(self) -> Any:
        return self._lease if self._lease is not None else getattr(self.store, "lease", None)

    def check_lease(self) -> None:
        """Raise `LeaseLostError` if another run took this run's name over."""
        if self.lease is not None:
            self.lease.check()

    def write(self, optimizer: Any, step: int, *, program_state: dict | None = None,
              state: str = RUNNING, error: str | None = None) -> None:
        """A checkpoint after `step`: the optimizer state, the best program (when the
        checkpointer has the program's payload) and the status, then the manifest.

        Raises:
            LeaseLostError: another run holds the name (nothing is written).
            CheckpointError: a file cannot be written.
        """
        self.check_lease()
        self.store.write_json(OPTIMIZER_STATE, Checkpoint(
            step, optimizer.state_dict(), program_state).to_dict())
        if self.payload is not None:
            self.store.write_json(BEST_PROGRAM, {**self.payload, "state": optimizer.best().state})
        self._status(optimizer, step, state, error)
        self.store.write_manifest(step, list(CHECKPOINT_FILES))

    def write_status(self, optimizer: Any, step: int, state: str = RUNNING,
                     error: str | None = None) -> None:
        """Only `status.json` (time spent, or how the fit ended: "failed"/"stopped").

        Raises:
            LeaseLostError: another run holds the name (nothing is written).
        """
        self.check_lease()
        self._status(optimizer, step, state, error)

    def _status(self, optimizer: Any, step: int, state: str, error: str | None) -> None:
        self.store.write_json(STATUS, build_status(optimizer, self.store.run_name, step,
                                                   self.started, state, error))

    def delete(self) -> None:
        """Remove the checkpoint's files (`BackupAndRestore(delete_checkpoint=True)`)."""
        for name in (MANIFEST, *CHECKPOINT_FILES):
            self.store.delete(name)
