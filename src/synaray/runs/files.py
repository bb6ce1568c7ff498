"""The names of a run's files under `<storage>/<run_name>/`: spelled here, and only here.

Layout (every file written atomically, see `synaray.runs.storage`)::

    manifest.json              written last by each checkpoint: run name, step, files
    optimizer_state.json       the checkpoint (`synaray.runs.checkpoint`)
    best_program.json          a normal saved program (`Program.load` reads it)
    status.json                the live status (`synaray.runs.status`)
    run_config.json            the resolved config of `synaray fit` (`synaray.runs.run_config`)
    outcome.json               what `synaray fit` produced (`FitOutcome`)
    before.json, before/*.parquet   the initial program's scores (`synaray fit`)
    predictions_<split>.parquet     per-row predictions before and after (`synaray fit`)
    data/<split>.parquet       the data snapshot (`synaray.runs.snapshot`)
    lease/<n>.json             the live run's lease (`synaray.runs.lease`)

Example:
    >>> snapshot_file("val")
    'data/val.parquet'
    >>> predictions_file("test")
    'predictions_test.parquet'
"""

from __future__ import annotations

__all__ = [
    "BEFORE",
    "BEST_PROGRAM",
    "CHECKPOINT_FILES",
    "DATA_DIR",
    "EVENTS_FILE",
    "LEASE_DIR",
    "MANIFEST",
    "OPTIMIZER_STATE",
    "OUTCOME",
    "RUN_CONFIG",
    "RUN_MARKERS",
    "SEARCH_FILE",
    "STATUS",
    "before_file",
    "predictions_file",
    "snapshot_file",
]

MANIFEST = "manifest.json"
OPTIMIZER_STATE = "optimizer_state.json"
BEST_PROGRAM = "best_program.json"
STATUS = "status.json"
RUN_CONFIG = "run_config.json"
OUTCOME = "outcome.json"
BEFORE = "before.json"
#: The events of a Ray run's search (the optimizer actor stores them before each checkpoint).
EVENTS_FILE = "events.json"
#: The search settings a restarted optimizer actor starts the search again with.
SEARCH_FILE = "search.json"
DATA_DIR = "data"
LEASE_DIR = "lease"

#: what one checkpoint writes (the manifest lists them and goes last)
CHECKPOINT_FILES = (OPTIMIZER_STATE, BEST_PROGRAM, STATUS)
#: a folder holding any of these is a run folder (readers: `synaray status`, reports)
RUN_MARKERS = (MANIFEST, STATUS, OPTIMIZER_STATE)


def snapshot_file(split: str) -> str:
    """The data snapshot of `split` ("train", "val", "test")."""
    return f"{DATA_DIR}/{split}.parquet"


def predictions_file(split: str) -> str:
    """The per-row predictions before and after of `split` ("val", "test")."""
    return f"predictions_{split}.parquet"


def before_file(split: str) -> str:
    """The initial program's per-row scores on `split`."""
    return f"before/{split}.parquet"
