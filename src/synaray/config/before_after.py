"""Before and after a search, per row: the program as given against the best one found.

`synaray fit` scores the initial program on the validation and test data before the search
(`score_rows`), stores those rows in the run folder (`before/<split>.parquet`, with
`before.json`, so a resumed run does not score them again), scores the best program on the
same rows after it, and `compare` pairs the two: mean rewards, the gain and its 95%
confidence interval (paired bootstrap over the rows, seeded), and how many rows improved or
regressed. `prediction_table` is the per-row table written as `predictions_<split>.parquet`:
id, input, expected, predicted, reward and error, before and after.

Example:
    >>> summary = compare([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0], seed=0)
    >>> summary["before"], summary["after"], summary["gain"], summary["improved"]
    (0.5, 0.75, 0.25, 1)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "bootstrap_interval", "compare", "prediction_table", "row_records",
           "rows_table"]

N_RESAMPLES = 2000
CONFIDENCE = 0.95
COLUMNS = ["id", "input", "expected", "predicted_before", "reward_before", "error_before",
           "predicted_after", "reward_after", "error_after", "change"]


def bootstrap_interval(diffs: Sequence[float], seed: int = 0,
                       n_resamples: int = N_RESAMPLES,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The `confidence` interval of the mean of `diffs` by bootstrap (rows resampled).

    Example:
        >>> bootstrap_interval([1.0, 1.0, 1.0])
        (1.0, 1.0)
    """
    values = np.asarray(diffs, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(n_resamples, values.size))
    means = values[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def compare(before: Sequence[float], after: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Paired summary of per-row rewards (same rows, same order).

    Returns:
        `{"rows", "before", "after", "gain", "ci_low", "ci_high", "improved", "regressed"}`.
    """
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"expected paired rewards; received {b.size} before and {a.size} "
                         "after")
    low, high = bootstrap_interval(a - b, seed)
    return {"rows": int(b.size), "before": float(b.mean()) if b.size else None,
            "after": float(a.mean()) if a.size else None,
            "gain": float((a - b).mean()) if b.size else None, "ci_low": low, "ci_high": high,
            "improved": int((a > b).sum()), "regressed": int((a < b).sum())}


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "get_json"):
        value = value.get_json()
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def row_records(results: Sequence[Any]) -> list[dict[str, Any]]:
    """One `{"id", "predicted", "reward", "error"}` per `EvalResult`."""
    return [{"id": r.example_id, "predicted": _dumps(r.y_pred), "reward": float(r.reward),
             "error": r.error} for r in results]


def rows_table(records: Sequence[dict[str, Any]]) -> Any:
    """`row_records` as an Arrow table (how `before/<split>.parquet` is stored)."""
    import pyarrow as pa

    return pa.table({
        "id": pa.array([r["id"] for r in records], pa.string()),
        "predicted": pa.array([r["predicted"] for r in records], pa.string()),
        "reward": pa.array([r["reward"] for r in records], pa.float64()),
        "error": pa.array([r["error"] for r in records], pa.string())})


def _change(before: float, after: float) -> str:
    return "improved" if after > before else "regressed" if after < before else "same"


def prediction_table(dataset: Any, before: Sequence[dict], after: Sequence[dict]) -> Any:
    """The per-row Arrow table of a split: `COLUMNS`, in the dataset's order.

    Args:
        dataset: the split (`Dataset`: ids, inputs, expected outputs).
        before, after: `row_records` of the initial and the best program on it.
    """
    import pyarrow as pa

    first = {r["id"]: r for r in before}
    last = {r["id"]: r for r in after}
    missing = {"predicted": None, "reward": 0.0, "error": "not scored"}
    rows: dict[str, list] = {name: [] for name in COLUMNS}
    for n, example_id in enumerate(dataset.ids):
        b, a = first.get(example_id, missing), last.get(example_id, missing)
        y = dataset.y[n] if dataset.y is not None else None
        values = [example_id, _dumps(dataset.x[n]), _dumps(y), b["predicted"], b["reward"],
                  b["error"], a["predicted"], a["reward"], a["error"],
                  _change(b["reward"], a["reward"])]
        for name, value in zip(COLUMNS, values, strict=True):
            rows[name].append(value)
    types = {"reward_before": pa.float64(), "reward_after": pa.float64()}
    return pa.table({name: pa.array(values, types.get(name, pa.string()))
                     for name, values in rows.items()})
