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

from synaray.config.checks import data_format, import_data_model
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
    val = _nonempty(read_split(data, "validation", source))
    split = config.training.validation_split
    if val is None and split:
        n_val = int(len(train) * split)
        if n_val == 0 or n_val == len(train):
            raise ConfigError(f"{source}: training.validation_split: {split} of "
                              f"{len(train)} rows leaves {n_val} for validation; expected "
                              "at least one row on each side.")
        train, val = train.take(0, len(train) - n_val), train.take(len(train) - n_val)
    return Splits(train, val, _nonempty(read_split(data, "test", source)))


def splits_from_storage(store: Any, config: RunConfig) -> Splits:
    """A resumed run's training and validation data, as the run stored them; test data
    from the config when its file is still there (else none)."""
    from synaray.data import Dataset

    train = Dataset.from_arrow(store.read_table("data/train.parquet"))
    val = (Dataset.from_arrow(store.read_table("data/val.parquet"))
           if store.exists("data/val.parquet") else None)
    test = None
    try:
        test = (_task_splits(config).test if config.task is not None
                else _nonempty(read_split(config.data, "test", config.source)))
    except (ConfigError, DataError) as exc:
        print(f"synaray: no test evaluation: the test data cannot be read ({exc})", flush=True)
    return Splits(train, val, test)
