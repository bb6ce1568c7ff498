"""Turning fit/evaluate arguments (arrays, Datasets, splits) into Datasets, with clear errors."""

from __future__ import annotations

import math
from typing import Any

from synaray.data.datasets import Dataset
from synaray.errors import ConfigError, DataError

__all__ = ["to_dataset", "train_val_datasets"]


def to_dataset(x: Any, y: Any = None, name: str = "x", prefix: str = "") -> Dataset:
    """A Dataset from a Dataset, or from arrays/lists of inputs `x` and outputs `y`."""
    if isinstance(x, Dataset):
        if y is not None:
            raise ConfigError(f"`{name}` is a Dataset, which holds its own labels; do not also "
                              "pass `y`.")
        return x
    if x is None:
        raise ConfigError(f"Invalid value for argument `{name}`. Received: None. Expected inputs "
                          "(a list or array of data models) or a Dataset.")
    xs = list(x)
    if not xs:
        raise DataError(f"`{name}` is empty: there is nothing to run on.")
    ys = None if y is None else list(y)
    if ys is not None and len(ys) != len(xs):
        raise DataError(f"`{name}` and its labels have different lengths: {len(xs)} inputs, "
                        f"{len(ys)} outputs.")
    return Dataset([f"{prefix}{i}" for i in range(len(xs))], xs, ys)


def train_val_datasets(x: Any, y: Any, validation_split: float,
                       validation_data: Any) -> tuple[Dataset, Dataset | None]:
    """The training Dataset and the validation Dataset (or None)."""
    train = to_dataset(x, y)
    if train.y is None:
        raise DataError("fit needs labels: pass `y` (or a labelled Dataset as `x`).")
    if validation_data is not None and validation_split:
        raise ConfigError("Pass either `validation_split` or `validation_data`, not both.")
    if validation_data is not None:
        if isinstance(validation_data, Dataset):
            val = validation_data
        elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            val = to_dataset(validation_data[0], validation_data[1], "validation_data", "val-")
        else:
            raise ConfigError("Invalid value for argument `validation_data`. Expected a "
                              "Dataset or a tuple (x_val, y_val).")
        if val.y is None:
            raise DataError("`validation_data` needs labels.")
        return train, val
    if not 0.0 <= validation_split < 1.0:
        raise ConfigError(f"Invalid value for argument `validation_split`. Received: "
                          f"{validation_split}. Expected a float in [0, 1).")
    if not validation_split:
        return train, None
    n_val = math.floor(len(train) * validation_split)
    if n_val == 0 or n_val == len(train):
        raise DataError(f"validation_split={validation_split} on {len(train)} examples leaves "
                        f"{n_val} validation and {len(train) - n_val} training examples; both "
                        "need at least one.")
    cut = len(train) - n_val
    return train.take(0, cut), train.take(cut)
