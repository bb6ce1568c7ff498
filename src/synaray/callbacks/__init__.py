"""Callbacks: hooks around `fit` (History, ProgressBar, checkpoints, early stopping...)."""

from synaray.callbacks.backup_and_restore import BackupAndRestore
from synaray.callbacks.callback import Callback, CallbackList
from synaray.callbacks.csv_logger import CSVLogger
from synaray.callbacks.early_stopping import EarlyStopping
from synaray.callbacks.history import History
from synaray.callbacks.program_checkpoint import ProgramCheckpoint
from synaray.callbacks.progress_bar import ProgressBar

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "ProgramCheckpoint",
    "ProgressBar",
]
