"""The run's data: a built-in task's splits, or JSONL/Parquet files (local or URIs).

Example:
    >>> from synaray.config.schema import RunConfig
    >>> config = RunConfig(task={"name": "sports_understanding", "n_train": 4, "n_val": 2},
    ...                    model="local/smollm2", optimizer="random_few_shot")
    >>> splits = load_splits(config)
    >>> len(splits.train), len(splits.val), splits.test
    (4, 2, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synaray.config.checks import import_data_model
from synaray.config.data_files import data_format
from synaray.config.schema import DataConfig, RunConfig
from synaray.errors import ConfigError, DataError

__all__ = ["Splits", "load_splits", "splits_from_storage"]


@dataclass
class Splits:
    """Training, validation (None: validated on training) and test (None: no test) data.

    Example:
        >>> Splits(train=[1, 2]).val is None
        True
    """

    train: Any
    val: Any = None
    test: Any = None


def _nonempty(dataset: Any) -> Any:
    return dataset if dataset is not None and len(dataset) else None


def read_split(data: DataConfig, split: str, source: str = "<config>") -> Any:
    """One split's file as a labelled `Dataset`, or None if the config names none."""
    from synaray.data import load_jsonl, load_parquet

    uri = getattr(data, split)
    if uri is None:
        return None
    if data.described():
        from synaray.config.data_program import data_models, described_dataset, read_rows

        return described_dataset(read_rows(data, split, source), data, data_models(data),
                                 str(uri))
    x_model = import_data_model(data.input_model, source, "data.input_model")
    y_model = import_data_model(data.output_model, source, "data.output_model")
    options = {"input_fields": data.input_fields, "output_fields": data.output_fields,
               "id_field": data.id_field, "limit": data.limit_of(split)}
    if data_format(uri, data.format, source) == "parquet":
        return load_parquet(uri, x_model, y_model, **options)
    return load_jsonl(uri, x_model, y_model, **options)


def _task_splits(config: RunConfig) -> Splits:
    from synaray.datasets import load_task

    task = config.task
    try:
        train, val, test = load_task(task.name, task.n_train, task.n_val, task.n_test)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: task: {exc}") from None
    return Splits(train, _nonempty(val), _nonempty(test))


def load_splits(config: RunConfig) -> Splits:
    """The config's data; a `validation_split` holds out the end of the training data."""
    if config.task is not None:
        return _task_splits(config)
    data, source = config.data, config.source
    train = read_split(data, "train", source)
    if len(train) == 0:
        raise DataError(f"{data.train}: no rows: there is nothing to train on.")
    if data.shuffle:
        import numpy as np

        from synaray.data import Dataset

        order = np.random.default_rng(config.training.seed).permutation(len(train))
        train = Dataset([train.ids[i] for i in order], train.x[order], train.y[order])
    test = _nonempty(read_split(data, "test", source))
    if data.test_split:
        train, test = _held_out(train, data.test_split, f"{source}: data.test_split")
    val = _nonempty(read_split(data, "validation", source))
    split = config.training.validation_split
    if val is None and split:
        train, val = _held_out(train, split, f"{source}: training.validation_split")
    return Splits(train, val, test)


def _held_out(train: Any, fraction: float, what: str) -> tuple[Any, Any]:
    """(the rest, the last `fraction` of the rows), or a ConfigError if a side is empty."""
    n_out = int(len(train) * fraction)
    if n_out == 0 or n_out == len(train):
        raise ConfigError(f"{what}: {fraction} of {len(train)} rows leaves {n_out} held "
                          "out; expected at least one row on each side.")
    return train.take(0, len(train) - n_out), train.take(len(train) - n_out)


def splits_from_storage(store: Any, config: RunConfig) -> Splits:
    """A resumed run's training and validation data, as the run stored them; test data
    as stored (held out by `data.test_split`), else from the config when its file is still
    there (else none)."""
    from synaray.runs.snapshot import read_snapshot

    stored = read_snapshot(store)
    train, val, test = stored.train, stored.val, None
    if stored.test is not None:  # held out of the training file (test_split)
        return Splits(train, val, stored.test)
    try:
        test = (_task_splits(config).test if config.task is not None
                else _nonempty(read_split(config.data, "test", config.source)))
    except (ConfigError, DataError) as exc:
        print(f"synaray: no test evaluation: the test data cannot be read ({exc})", flush=True)
    return Splits(train, val, test)
