"""Tasks of the comparison bench: built-in synaray tasks or any JSONL file, split with a seed.

A `BenchTask` holds the rows once, already split: every method of the bench (synaray's and
DSPy's) gets the same train / validation / test rows and the same metric, `score(y_true,
y_pred)`: exact match (a list of accepted answers matches any of them) or the SQuAD token
F1 for the tasks whose reward is F1. The metric is synaray's own reward function, so the two
libraries are scored by one piece of code.

Example:
    >>> task = load_bench_task("sports_understanding", n_train=3, n_val=2, n_test=2, seed=0)
    >>> len(task.train), len(task.val), len(task.test), task.input_fields, task.output_field
    (3, 2, 2, ['statement'], 'answer')
    >>> task.score({"answer": "plausible"}, {"answer": "plausible"})
    1.0
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic

from synaray.data.data_model import DataModel, Field
from synaray.datasets.tasks import TASKS, get_task
from synaray.rewards import exact_match, token_f1_reward

__all__ = ["BenchTask", "load_bench_task", "load_jsonl_task"]

# A JSONL task whose target column holds at most this many distinct answers is a closed set:
# its output field becomes a Literal (as the built-in classification tasks are).
CLOSED_SET_MAX = 12


@dataclass
class BenchTask:
    """One task, split: rows are `{"id", "x": {field: value}, "y": {output_field: value}}`."""

    name: str
    instructions: str
    input_data_model: type[DataModel]
    output_data_model: type[DataModel]
    y_data_model: type[DataModel]
    reward: str  # "exact_match" or "f1_score"
    train: list[dict]
    val: list[dict]
    test: list[dict]

    @property
    def input_fields(self) -> list[str]:
        return list(self.input_data_model.model_fields)

    @property
    def output_field(self) -> str:
        return next(iter(self.output_data_model.model_fields))

    @property
    def labels(self) -> list[str] | None:
        """The closed answer set (a Literal output field), or None."""
        annotation = self.output_data_model.model_fields[self.output_field].annotation
        args = getattr(annotation, "__args__", None)
        if getattr(annotation, "__origin__", None) is Literal and args:
            return [str(a) for a in args]
        return None

    def score(self, y_true: dict, y_pred: dict | None) -> float:
        """The task's metric on one example (1.0 is perfect)."""
        if y_pred is None:
            return 0.0
        if self.reward == "f1_score":
            return float(token_f1_reward(y_true, y_pred))
        return float(exact_match(y_true, y_pred))


def _split(rows: list[dict], n_train: int, n_val: int, n_test: int, seed: int,
           where: str) -> tuple[list[dict], list[dict], list[dict]]:
    total = n_train + n_val + n_test
    if min(n_train, n_val, n_test) < 1 or total > len(rows):
        raise SystemExit(f"error: {where} has {len(rows)} rows; --n-train + --n-val + --n-test "
                         f"= {total} (each must be >= 1 and the sum at most the row count).")
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    return (shuffled[:n_train], shuffled[n_train:n_train + n_val],
            shuffled[n_train + n_val:total])


def load_bench_task(name: str, n_train: int, n_val: int, n_test: int,
                    seed: int = 0) -> BenchTask:
    """A built-in task (`synaray.datasets.TASKS`), shuffled with `seed` and split."""
    if name not in TASKS:
        raise SystemExit(f"error: unknown task {name!r}; expected one of {sorted(TASKS)} "
                         "or --task-file FILE.jsonl")
    spec = get_task(name)
    from synaray.datasets.tasks import _read_rows  # the bundled file, as load_task reads it

    x_names = list(spec.input_data_model.model_fields)
    y_names = list(spec.y_data_model.model_fields)
    rows = []
    for row in _read_rows(spec):
        prepared = spec.prepare(row)
        rows.append({"id": str(row["id"]), "x": {k: prepared[k] for k in x_names},
                     "y": {k: prepared[k] for k in y_names}})
    train, val, test = _split(rows, n_train, n_val, n_test, seed, f"task {name!r}")
    return BenchTask(name, spec.instructions, spec.input_data_model, spec.output_data_model,
                     spec.y_data_model, spec.reward, train, val, test)


def load_jsonl_task(path: str | Path, input_fields: list[str], target_field: str,
                    n_train: int, n_val: int, n_test: int, seed: int = 0,
                    instructions: str | None = None, reward: str = "exact_match",
                    closed_set: str = "auto") -> BenchTask:
    """A task from a JSONL file: `input_fields` columns in, `target_field` column out.

    `closed_set`: "auto" makes the answer a Literal of the distinct targets when there are at
    most `CLOSED_SET_MAX` of them, "on" always, "off" never.
    """
    path = Path(path)
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise SystemExit(f"error: --task-file {path}: {exc.strerror}") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"error: --task-file {path}, line {n}: not JSON ({exc.msg})") from exc
        missing = [f for f in [*input_fields, target_field] if f not in record]
        if missing:
            raise SystemExit(f"error: --task-file {path}, line {n}: no field(s) {missing} "
                             f"(has {sorted(record)}); see --input-field / --target-field")
        accepted = _accepted(record[target_field])
        if not accepted:
            raise SystemExit(f"error: --task-file {path}, line {n}: field {target_field!r} "
                             f"has no answer (got {record[target_field]!r}; expected a "
                             "string or number, a list of answers, or choice -> score)")
        rows.append({"id": str(record.get("id", n)),
                     "x": {f: _as_text(record[f]) for f in input_fields},
                     "y": {"answer": accepted}})
    targets = sorted({r["y"]["answer"][0] for r in rows})
    closed = closed_set == "on" or (closed_set == "auto" and len(targets) <= CLOSED_SET_MAX)
    answer_type: Any = Literal[tuple(targets)] if closed else str
    inputs = pydantic.create_model(f"{path.stem}_inputs", __base__=DataModel,
                          **{f: (str, Field(description=f"The {f}")) for f in input_fields})
    outputs = pydantic.create_model(f"{path.stem}_answer", __base__=DataModel,
                           answer=(answer_type, Field(description=f"The {target_field}")))
    # Several accepted answers on some row (BIG-bench `target` lists: "12" or "twelve"): the
    # ground truth keeps them all, as SQuAD's does, and exact match accepts any of them;
    # labelled demos show the first. Otherwise the ground truth is the single answer.
    truth = outputs
    if all(len(r["y"]["answer"]) == 1 for r in rows):
        for r in rows:
            r["y"]["answer"] = r["y"]["answer"][0]
    else:
        truth = pydantic.create_model(
            f"{path.stem}_accepted", __base__=DataModel,
            answer=(list[str], Field(description=f"Every accepted answer ({target_field}), the "
                                     "one labelled demos show first")))
    train, val, test = _split(rows, n_train, n_val, n_test, seed, f"--task-file {path}")
    text = instructions or (f"Answer with the {target_field} for the given "
                            f"{', '.join(input_fields)}.")
    return BenchTask(path.stem, text, inputs, outputs, truth, reward, train, val, test)


def _as_text(value: Any) -> str:
    """An input column as the model reads it: a list (e.g. BIG-bench `choices`) one item per
    line, a mapping as JSON, anything else as its string.

    Example:
        >>> _as_text(["red", "blue"]), _as_text(3)
        ('- red\\n- blue', '3')
    """
    if isinstance(value, list):
        return "\n".join(f"- {_as_text(item)}" for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _accepted(value: Any) -> list[str]:
    """Every accepted answer of a row, the one labelled demos show first: each of a list
    (BIG-bench `target` lists), else the one `_as_target` finds; empty when there is none.

    Example:
        >>> _accepted(["4", "four", "4"]), _accepted({"a": 0, "b": 1}), _accepted([None])
        (['4', 'four'], ['b'], [])
    """
    items = value if isinstance(value, list) else [value]
    answers = [a for a in (_as_target(item) for item in items) if a is not None]
    return list(dict.fromkeys(answers))


def _as_target(value: Any) -> str | None:
    """One answer: a string or number as is, the best-scored choice of a `target_scores`
    mapping; None when there is none (lists are `_accepted`'s).

    Example:
        >>> _as_target(4), _as_target({"a": 0, "b": 1}), _as_target(None)
        ('4', 'b', None)
    """
    if isinstance(value, dict):
        scored = [(score, choice) for choice, score in value.items()
                  if isinstance(score, int | float) and not isinstance(score, bool)]
        return str(max(scored, key=lambda pair: pair[0])[1]) if scored else None
    if value is None:
        return None
    return str(value)
