"""A program built from the data's own description: a run config with no Python module.

`data.inputs` and `data.outputs` name the program's fields and the columns (or templates)
that fill them; `program.instructions` and `program.kind` say what the one module does.
From them this module makes the two `DataModel` classes (`pydantic.create_model`), reads the
data files into a `Dataset`, and builds the program: `Input -> Generator` (or
`ChainOfThought`) `-> Output`. The classes live only in memory: a saved program keeps their
JSON schemas, so it loads and runs on Ray workers like any other (as `JsonDataModel`s).

Per-row choices (`outputs.<field>.choices: COLUMN`): a `Literal` type cannot change from row
to row, so the answer's type is the union of every row's choices (read once from the data
files and written into the run's saved config as `labels`), and each row's own choices go
to the model as an input field (named like the column, unless an input already uses it).
An answer outside the row's choices is then allowed by the grammar and scores 0 with
exact match. Over `MAX_LABELS` distinct values, the answer stays free text.

Example:
    >>> from synaray.config.schema import DataConfig
    >>> data = DataConfig(train="qa.jsonl", inputs={"question": {"template": "{q} ({options})"}},
    ...                   outputs={"answer": {"column": "target", "labels": ["a", "b"]}})
    >>> Inputs, Outputs = data_models(data)
    >>> Outputs.get_schema()["properties"]["answer"]["enum"]
    ['a', 'b']
    >>> input_row(data, {"q": "Which?", "options": ["a", "b"]}, "demo")
    {'question': 'Which? (["a", "b"])'}
"""

from __future__ import annotations

import json
import string
from typing import Any, Literal

import pydantic

from synaray.config.data_files import data_format
from synaray.config.schema import DataConfig, InputFieldConfig, OutputFieldConfig, RunConfig
from synaray.errors import ConfigError, DataError

__all__ = ["MAX_LABELS", "build_data_program", "data_models", "default_reward_settings",
           "described_dataset", "input_row", "read_file_rows", "read_rows", "template_columns",
           "with_resolved_labels"]

MAX_LABELS = 200
SPLITS = ("train", "validation", "test")
CHOICES_DESCRIPTION = "The allowed answers for this row"

_PY_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                             "list[string]": list[str]}


# --- fields ----------------------------------------------------------------------------------
def template_columns(template: str, where: str = "data.inputs") -> list[str]:
    """The column names a template refers to (`{name}` only: no attributes or indexes).

    Raises:
        ConfigError: a malformed template, a placeholder that is not a plain name, or none.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}.template: {exc} in {template!r}.") from None
    names = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ConfigError(f"{where}.template: expected column names in braces, such as "
                              f"{{question}}; received {{{name}}} in {template!r}.")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError(f"{where}.template: expected at least one {{column}} in {template!r}.")
    return names


def _input_columns(data: DataConfig) -> set[str]:
    used = set()
    for name, spec in (data.inputs or {}).items():
        used.update(template_columns(spec.template, f"data.inputs.{name}")
                    if spec.template is not None else [spec.column or name])
    return used


def _choices_inputs(data: DataConfig) -> dict[str, str]:
    """Input fields added for per-row choices: field name -> column."""
    used = _input_columns(data)
    added = {}
    for spec in (data.outputs or {}).values():
        column = spec.choices
        if column is not None and column not in used and column not in (data.inputs or {}):
            if column in (data.outputs or {}):
                raise ConfigError(f"data.outputs: the choices column {column!r} is also an "
                                  "output field's name; rename the field.")
            added[column] = column
    return added


def _field(annotation: Any, description: str | None) -> tuple[Any, Any]:
    info = {"description": description} if description else {}
    return annotation, pydantic.Field(..., **info)


def _output_annotation(spec: OutputFieldConfig) -> Any:
    if spec.labels:
        return Literal[tuple(spec.labels)]
    return _PY_TYPES[spec.type]


def data_models(data: DataConfig) -> tuple[type, type]:
    """The input and output `DataModel` classes that `data.inputs`/`data.outputs` describe.

    Outputs with `choices` must have their `labels` resolved first (`with_resolved_labels`)
    to become a Literal; otherwise they are typed by `type`.
    """
    from synaray.data import DataModel

    if not data.described():
        raise ConfigError("data: expected `inputs` and `outputs` to build the program from.")
    inputs = {name: _field(str if spec.template is not None else _PY_TYPES[spec.type],
                           spec.description) for name, spec in data.inputs.items()}
    for name in _choices_inputs(data):
        inputs[name] = _field(list[str], CHOICES_DESCRIPTION)
    outputs = {name: _field(_output_annotation(spec), spec.description)
               for name, spec in data.outputs.items()}
    return (pydantic.create_model("Inputs", __base__=DataModel, **inputs),
            pydantic.create_model("Outputs", __base__=DataModel, **outputs))


# --- rows ------------------------------------------------------------------------------------
def read_file_rows(uri: str, kind: str, limit: int | None = None) -> list[dict]:
    """The rows (dicts) of a JSONL or Parquet (`kind`) file, local or a URI."""
    from synaray.data import read_jsonl_rows

    if kind == "jsonl":
        return read_jsonl_rows(uri, limit)
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(uri)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read Parquet data {uri}: {exc}") from exc
    return (table.slice(0, limit) if limit is not None else table).to_pylist()


def read_rows(data: DataConfig, split: str, source: str = "<config>") -> list[dict] | None:
    """The rows of one split's file, at most `data.limit` of them; None without a file."""
    uri = getattr(data, split)
    if uri is None:
        return None
    return read_file_rows(uri, data_format(uri, data.format, source), data.limit_of(split))


def _column(row: dict, column: str, field: str, where: str) -> Any:
    if column not in row:
        raise DataError(f"{where}: missing column {column!r} for field {field!r}; the row has "
                        f"{sorted(row)}.")
    return row[column]


def _as_text(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _typed(value: Any, kind: str) -> Any:
    """Numbers and booleans become text for a string field (a CSV-born `1` is a label)."""
    if kind == "string" and isinstance(value, int | float | bool):
        return str(value)
    if kind == "list[string]" and isinstance(value, list):
        return [str(v) if isinstance(v, int | float | bool) else v for v in value]
    return value


def _input_value(name: str, spec: InputFieldConfig, row: dict, where: str) -> Any:
    if spec.template is None:
        return _typed(_column(row, spec.column or name, name, where), spec.type)
    columns = template_columns(spec.template, f"data.inputs.{name}")
    values = {c: _as_text(_column(row, c, name, where)) for c in columns}
    try:
        return spec.template.format_map(values)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise DataError(f"{where}: data.inputs.{name}.template: {exc}.") from None


def input_row(data: DataConfig, row: dict, where: str) -> dict:
    """The program's input JSON for one data row (columns and templates applied)."""
    values = {name: _input_value(name, spec, row, where) for name, spec in data.inputs.items()}
    for name, column in _choices_inputs(data).items():
        values[name] = _typed(_choices_of(row, column, name, where), "list[string]")
    return values


def _label(value: Any, spec: OutputFieldConfig) -> Any:
    if spec.labels and all(isinstance(v, str) for v in spec.labels):
        return _typed(value, "string")
    return value if spec.labels else _typed(value, spec.type)


def output_row(data: DataConfig, row: dict, where: str) -> dict:
    """The expected output JSON for one data row."""
    return {name: _label(_column(row, spec.column or name, name, where), spec)
            for name, spec in data.outputs.items()}


def described_dataset(rows: list[dict], data: DataConfig, models: tuple[type, type],
                      source: str) -> Any:
    """A labelled `Dataset` from raw rows, with the fields `data` describes.

    Raises:
        DataError: naming the file, the row and the column or field that does not fit.
    """
    from synaray.data import Dataset

    x_model, y_model = models
    ids, xs, ys = [], [], []
    for n, row in enumerate(rows):
        where = f"{source}, row {n + 1}"
        ids.append(str(row[data.id_field]) if data.id_field in row else str(n))
        xs.append(_validated(x_model, input_row(data, row, where), where))
        ys.append(_validated(y_model, output_row(data, row, where), where))
    return Dataset(ids, xs, ys)


def _validated(model: type, values: dict, where: str) -> Any:
    try:
        return model(**values)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (received "
                             f"{e.get('input')!r:.60})" for e in exc.errors())
        raise DataError(f"{where}: the row does not fit the described fields: "
                        f"{problems}.") from None


# --- labels ----------------------------------------------------------------------------------
def _choices_of(row: dict, column: str, field: str, where: str) -> list:
    value = _column(row, column, field, where)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if not isinstance(value, list):
        raise DataError(f"{where}: column {column!r} (choices of {field!r}): expected a list "
                        f"of allowed answers; received {value!r:.60}.")
    return value


def _labels_in_data(data: DataConfig, name: str, spec: OutputFieldConfig,
                    source: str) -> list:
    seen: dict[str, Any] = {}
    for split in SPLITS:
        for n, row in enumerate(read_rows(data, split, source) or []):
            where = f"{getattr(data, split)}, row {n + 1}"
            for value in _choices_of(row, spec.choices, name, where):
                seen.setdefault(repr(_typed(value, spec.type)), _typed(value, spec.type))
    return list(seen.values())


def with_resolved_labels(config: RunConfig, say: Any = None) -> RunConfig:
    """`config` with the labels of every `choices` output read from the data files.

    Idempotent: outputs that have `labels` are left alone, so a run's saved config (which
    holds them) rebuilds the same program without its data files.
    """
    data = config.data
    if data is None or not data.described():
        return config
    outputs = dict(data.outputs)
    changed = False
    for name, spec in data.outputs.items():
        if spec.choices is None or spec.labels is not None:
            continue
        labels = _labels_in_data(data, name, spec, config.source)
        if not labels or len(labels) > MAX_LABELS:
            if say is not None:
                say(f"data.outputs.{name}: {len(labels)} distinct choices in the data (over "
                    f"{MAX_LABELS} or none): the answer stays free text")
            continue
        outputs[name] = spec.model_copy(update={"labels": labels})
        changed = True
        if say is not None:
            say(f"data.outputs.{name}: answers constrained to the {len(labels)} choices found "
                f"in the data: {', '.join(map(str, labels[:10]))}"
                f"{' ...' if len(labels) > 10 else ''}")
    if not changed:
        return config
    resolved = config.model_copy(update={"data": data.model_copy(update={"outputs": outputs})})
    resolved._source = config.source
    return resolved


# --- program ---------------------------------------------------------------------------------
def default_reward_settings(data: DataConfig) -> dict[str, Any]:
    """Exact match on the output fields (a chain of thought's `thinking` is not compared)."""
    return {"name": "exact_match", "in_mask": list(data.outputs)}


def _program_name(config: RunConfig) -> str:
    import re
    from pathlib import PurePosixPath

    if config.program is not None and config.program.name:
        return config.program.name
    stem = PurePosixPath(config.data.train.partition("?")[0].rstrip("/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "program"


async def build_data_program(config: RunConfig, lm: Any) -> Any:
    """The one-module program that `config.data` describes (labels read if still needed).

    Raises:
        ConfigError: no language model, or fields that cannot be built.
    """
    import synaray

    if lm is None:
        raise ConfigError(f"{config.source}: model: missing required key: a program built "
                          "from data.inputs/data.outputs needs a language model (e.g. "
                          "model: local/smollm2-135m).")
    config = with_resolved_labels(config)
    x_model, y_model = data_models(config.data)
    spec = config.program
    kind = spec.kind if spec is not None else "generator"
    instructions = spec.instructions if spec is not None else None
    module = synaray.ChainOfThought if kind == "chain_of_thought" else synaray.Generator
    inputs = synaray.Input(data_model=x_model)
    outputs = await module(data_model=y_model, language_model=lm,
                           instructions=instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name=_program_name(config),
                           description=instructions)
