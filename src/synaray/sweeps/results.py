"""A sweep's outcome: one row per trial, ranked, printed and written as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SweepResult", "rank_rows"]

#: Columns shown first (then the swept parameters, then these last).
LEAD_COLUMNS = ("rank", "trial", "status")
METRIC_COLUMNS = ("val_reward", "reward", "test_reward", "lm_calls", "lm_failures",
                  "generations", "time_s")
TAIL_COLUMNS = ("run_name", "best_program_path", "error")
#: Columns the printed table leaves out when no trial has a value in them.
OPTIONAL_COLUMNS = ("test_reward", "error")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def rank_rows(rows: list[dict], metric: str = "val_reward", mode: str = "max") -> list[dict]:
    """Sort trial rows best first by `metric` (then trials without a value, then failed
    trials) and number them in a `rank` column (1 = best). Ties keep trial order.

    Example:
        >>> [r["trial"] for r in rank_rows([{"trial": 0, "val_reward": 0.2},
        ...                                 {"trial": 1, "val_reward": None},
        ...                                 {"trial": 2, "val_reward": 0.9}])]
        [2, 0, 1]
    """
    sign = -1.0 if mode == "max" else 1.0

    def key(row: dict) -> tuple:
        value = _number(row.get(metric))
        failed = row.get("status", "ok") != "ok"
        return (failed, value is None, 0.0 if value is None else sign * value,
                row.get("trial", 0))

    ranked = sorted(rows, key=key)
    for i, row in enumerate(ranked, 1):
        row["rank"] = i
    return ranked


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


@dataclass
class SweepResult:
    """The ranked trials of a sweep, best first.

    Attributes:
        name: the sweep's name (its folder under `storage`).
        storage: where the sweep wrote its files (local folder or URI).
        metric: the column trials are ranked by; `mode` says whether higher is better.
        parameters: the swept dotted keys (one column each).
        rows: one dict per trial: rank, trial, status, the metrics, the parameter values,
            run_name, best_program_path, error.
        files: where the table was written ({"csv": ..., "json": ...}).

    Example:
        >>> result = SweepResult("demo", "/tmp/runs", "val_reward", "max", ["optimizer.seed"],
        ...     [{"trial": 0, "status": "ok", "val_reward": 0.5, "optimizer.seed": 0,
        ...       "best_program_path": "/tmp/runs/demo/t000/best_program.json"}])
        >>> result.best_program_path
        '/tmp/runs/demo/t000/best_program.json'
    """

    name: str
    storage: str
    metric: str
    mode: str
    parameters: list[str]
    rows: list[dict]
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = rank_rows(list(self.rows), self.metric, self.mode)

    @property
    def best(self) -> dict | None:
        """The best finished trial's row, or None if no trial finished with a value."""
        first = self.rows[0] if self.rows else None
        if first is None or first.get("status") != "ok" or \
                _number(first.get(self.metric)) is None:
            return None
        return first

    @property
    def best_program_path(self) -> str | None:
        """Where the best trial saved its best program (`Program.load` reads it)."""
        return self.best.get("best_program_path") if self.best else None

    @property
    def columns(self) -> list[str]:
        """The table's columns, in order."""
        metrics = [self.metric, *(c for c in METRIC_COLUMNS if c != self.metric)]
        return [*LEAD_COLUMNS, *metrics, *self.parameters, *TAIL_COLUMNS]

    def to_records(self) -> list[dict]:
        """The rows with every column (missing values as None), best first."""
        return [{c: row.get(c) for c in self.columns} for row in self.rows]

    def to_csv(self) -> str:
        """The table as CSV text (header first; lists and dicts as JSON)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for record in self.to_records():
            writer.writerow(["" if v is None else json.dumps(v) if isinstance(v, list | dict)
                             else v for v in record.values()])
        return out.getvalue()

    def to_json(self) -> str:
        """The sweep as JSON: name, metric, mode, parameters, best_program_path, rows."""
        return json.dumps({"name": self.name, "storage": self.storage, "metric": self.metric,
                           "mode": self.mode, "parameters": self.parameters,
                           "best_program_path": self.best_program_path,
                           "rows": self.to_records()}, indent=2, ensure_ascii=False)

    def format_table(self, max_width: int = 60) -> str:
        """The table as aligned text for a terminal (long cells shortened from the left;
        `test_reward` and `error` shown only when some trial has one)."""
        columns = [c for c in self.columns if c not in OPTIONAL_COLUMNS
                   or any(r.get(c) is not None for r in self.rows)]
        cells = [[_cell(row.get(c)) for c in columns] for row in self.rows]
        cells = [[c if len(c) <= max_width else "…" + c[-(max_width - 1):] for c in line]
                 for line in cells]
        widths = [max([len(c), *(len(line[i]) for line in cells)])
                  for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True))
                  for line in cells]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        best = self.best
        score = f"{best[self.metric]:.4f}" if best else "none"
        return f"<SweepResult {self.name!r} trials={len(self.rows)} best {self.metric}={score}>"
