"""The run's data snapshot: `data/<split>.parquet` in its folder, written and read here only.

A run keeps the data it was fitted on, so a restarted optimizer actor needs no driver, a
resumed run reads the same rows whatever happened to the files since, and reports show the
inputs and expected outputs. Splits: "train", "val" and (held out of the training file by
`data.test_split`) "test".

Example:
    >>> import tempfile
    >>> import synaray
    >>> from synaray.data import Dataset
    >>> from synaray.runs.storage import RunStorage
    >>> class Q(synaray.DataModel):
    ...     q: str
    >>> store = RunStorage(tempfile.mkdtemp(), "demo")
    >>> write_snapshot(store, train=Dataset(["a"], [Q(q="1")]))
    >>> len(read_snapshot(store).train)
    1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synaray.runs.files import snapshot_file

__all__ = ["SPLITS", "Snapshot", "has_snapshot", "read_snapshot", "read_split",
           "read_split_table", "write_snapshot"]

SPLITS = ("train", "val", "test")


@dataclass
class Snapshot:
    """The stored splits (`synaray.data.Dataset`s; val and test may be None)."""

    train: Any
    val: Any = None
    test: Any = None


def has_snapshot(store: Any) -> bool:
    """Whether the run folder holds its training data."""
    return bool(store.exists(snapshot_file("train")))


def write_snapshot(store: Any, train: Any = None, val: Any = None, test: Any = None,
                   overwrite: bool = True) -> None:
    """Write the splits given (None: not written). With `overwrite` false, splits already
    stored are kept (a restart writes nothing new)."""
    for split, dataset in zip(SPLITS, (train, val, test), strict=True):
        name = snapshot_file(split)
        if dataset is not None and (overwrite or not store.exists(name)):
            store.write_table(name, dataset.to_arrow())


def read_split_table(store: Any, split: str) -> Any:
    """One stored split as the Arrow table written (columns id, x, y: JSON strings), or
    None when it is not stored (reports read the rows as plain JSON)."""
    name = snapshot_file(split)
    return store.read_table(name) if store.exists(name) else None


def read_split(store: Any, split: str) -> Any:
    """One stored split as a `Dataset`, or None when it is not stored."""
    from synaray.data.datasets import Dataset

    table = read_split_table(store, split)
    return Dataset.from_arrow(table) if table is not None else None


def read_snapshot(store: Any) -> Snapshot:
    """The stored splits.

    Raises:
        CheckpointError: no training data stored.
    """
    from synaray.errors import CheckpointError

    train = read_split(store, "train")
    if train is None:
        raise CheckpointError(f"No {snapshot_file('train')} in run storage "
                              f"{store.display_uri('')}: the run's data was never stored.")
    return Snapshot(train, read_split(store, "val"), read_split(store, "test"))
