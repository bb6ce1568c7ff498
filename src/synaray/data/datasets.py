"""Datasets: rows of (id, x, y) loaded from JSONL or Parquet into arrays of DataModels.

Requests and shards carry example ids, never payloads; `Dataset.fetch(ids)` gives the rows
where they are used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from synaray.data.data_model import DataModel
from synaray.errors import DataError

__all__ = ["Dataset", "load_jsonl", "load_parquet", "read_jsonl_rows", "repeated_ids",
           "rows_to_dataset", "validation_reasons"]


class Dataset:
    """Examples with stable string ids: `x` and `y` are numpy object arrays of DataModels.

    Args:
        ids: one unique string id per example.
        x: the inputs (DataModel instances).
        y: the expected outputs (DataModel instances), or None for unlabelled data.

    Example:
        >>> import synaray
        >>> class Q(synaray.DataModel):
        ...     q: str
        >>> ds = Dataset(["a", "b"], [Q(q="1"), Q(q="2")])
        >>> len(ds), ds.fetch(["b"])[0][0].q
        (2, '2')
    """

    def __init__(self, ids: Sequence[str], x: Sequence[Any], y: Sequence[Any] | None = None):
        if len(ids) != len(x) or (y is not None and len(y) != len(x)):
            raise DataError(
                f"Expected ids, x and y of equal length; received {len(ids)}, {len(x)} and "
                f"{'None' if y is None else len(y)}."
            )
        self.ids = [str(i) for i in ids]
        repeated = repeated_ids(self.ids)
        if repeated:
            raise DataError(f"Expected unique example ids; {repeated}.")
        self.x = _object_array(x)
        self.y = None if y is None else _object_array(y)
        self._index = {i: n for n, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"<Dataset size={len(self)} labelled={self.y is not None}>"

    def fetch(self, ids: Sequence[str]) -> list[tuple[Any, Any]]:
        """The (x, y) pairs of the given ids, in that order."""
        try:
            rows = [self._index[i] for i in ids]
        except KeyError as exc:
            raise DataError(f"Unknown example id {exc.args[0]!r}.") from None
        return [(self.x[n], None if self.y is None else self.y[n]) for n in rows]

    def take(self, start: int, stop: int | None = None) -> Dataset:
        """Rows `start:stop` as a new Dataset (ids kept)."""
        sl = slice(start, stop)
        return Dataset(self.ids[sl], self.x[sl], None if self.y is None else self.y[sl])

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.x, self.y

    def to_arrow(self, ids: Sequence[str] | None = None) -> Any:
        """The rows (all, or `ids`) as an Arrow table of JSON strings: id, x, y.

        Schemas travel in the table metadata. This is how shards go to Ray workers: plain
        data, no Python classes.
        """
        import pyarrow as pa

        rows = self.fetch(ids) if ids is not None else list(zip(self.x, _ys(self), strict=True))
        keys = list(ids) if ids is not None else self.ids
        x_json = [json.dumps(_as_json(x)) for x, _ in rows]
        y_json = [None if y is None else json.dumps(_as_json(y)) for _, y in rows]
        meta = {"x_schema": json.dumps(_schema(self.x)),
                "y_schema": json.dumps(_schema(self.y) if self.y is not None else None)}
        return pa.table({"id": keys, "x": x_json, "y": y_json}).replace_schema_metadata(meta)

    @classmethod
    def from_arrow(cls, table: Any) -> Dataset:
        """Rebuild a Dataset of `JsonDataModel`s from `to_arrow` output."""
        from synaray.data.data_model import JsonDataModel

        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        x_schema = json.loads(meta.get("x_schema", "null"))
        y_schema = json.loads(meta.get("y_schema", "null"))
        cols = table.to_pydict()
        xs = [JsonDataModel(json=json.loads(x), schema=x_schema) for x in cols["x"]]
        labelled = y_schema is not None or any(y is not None for y in cols["y"])
        ys = [None if y is None else JsonDataModel(json=json.loads(y), schema=y_schema)
              for y in cols["y"]] if labelled else None
        return cls(cols["id"], xs, ys)


def _ys(dataset: Dataset) -> list[Any]:
    return list(dataset.y) if dataset.y is not None else [None] * len(dataset)


def _as_json(value: Any) -> dict:
    return value if isinstance(value, dict) else value.get_json()


def _schema(values: np.ndarray) -> dict | None:
    for value in values:
        if value is not None and hasattr(value, "get_schema"):
            return value.get_schema()
    return None


def _object_array(values: Sequence[Any]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    for n, value in enumerate(values):
        arr[n] = value
    return arr


def repeated_ids(ids: Sequence[Any], shown: int = 5) -> str:
    """`'a' (rows 1, 3), 'b' (rows 2, 5)` style text naming repeated ids and their rows
    (missing ids, None, are not counted); an empty string when no id repeats.

    Example:
        >>> repeated_ids(["a", "b", "a"])
        "repeated: 'a' (rows 1, 3)"
    """
    rows: dict[str, list[int]] = {}
    for n, i in enumerate(ids, 1):
        if i is not None:
            rows.setdefault(str(i), []).append(n)
    repeated = [(i, r) for i, r in rows.items() if len(r) > 1]
    if not repeated:
        return ""
    text = ", ".join(f"{i!r} (rows {', '.join(map(str, r[:5]))}"
                     f"{', ...' if len(r) > 5 else ''})" for i, r in repeated[:shown])
    more = f" and {len(repeated) - shown} more" if len(repeated) > shown else ""
    return f"repeated: {text}{more}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validation_reasons(exc: pydantic.ValidationError,
                       columns: Mapping[str, str] | None = None, shown: int = 3) -> str:
    """`field 'x': Input should be a valid string (got 12)` for each problem pydantic found
    (the data column named too when it differs from the field).

    Example:
        >>> class Q(DataModel):
        ...     x: str
        >>> try:
        ...     Q(x=12)
        ... except pydantic.ValidationError as exc:
        ...     print(validation_reasons(exc))
        field 'x': Input should be a valid string (got 12)
    """
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:shown]:
        loc = tuple(error.get("loc") or ())
        name = ".".join(str(part) for part in loc) or "(the row)"
        column = (columns or {}).get(str(loc[0])) if loc else None
        text = f"field {name!r}" + (f" (column {column!r})" if column and column != loc[0]
                                    else "")
        text += f": {error['msg']}"
        if error["type"] != "missing" and "input" in error:
            text += f" (got {_shown(error['input'])})"
        parts.append(text)
    more = f"; and {len(errors) - shown} more" if len(errors) > shown else ""
    return "; ".join(parts) + more


def _build(model: type[DataModel], row: Mapping[str, Any], fields: Mapping[str, str] | None,
           where: str) -> DataModel:
    if fields is None:
        fields = {name: name for name in model.model_fields}
    values = {}
    for field, column in fields.items():
        if column not in row:
            raise DataError(
                f"{where}: missing column {column!r} for field {field!r} of {model.__name__}; "
                f"the row has {sorted(row)}."
            )
        values[field] = row[column]
    try:
        return model(**values)
    except pydantic.ValidationError as exc:
        raise DataError(f"{where}: the row does not fit {model.__name__}: "
                        f"{validation_reasons(exc, fields)}") from None


def rows_to_dataset(rows: Sequence[Mapping[str, Any]], input_data_model: type[DataModel],
                    output_data_model: type[DataModel] | None = None,
                    input_fields: Mapping[str, str] | None = None,
                    output_fields: Mapping[str, str] | None = None,
                    id_field: str | None = "id", source: str = "rows") -> Dataset:
    """Build a Dataset from dict rows, mapping model fields to row columns.

    `input_fields` maps each field of `input_data_model` to the column that fills it
    (default: same name); likewise `output_fields`. Rows without `id_field` get their index.
    """
    ids, xs, ys = [], [], []
    for n, row in enumerate(rows):
        where = f"{source}, row {n + 1}"
        ids.append(str(row[id_field]) if id_field and id_field in row else str(n))
        xs.append(_build(input_data_model, row, input_fields, where))
        if output_data_model is not None:
            ys.append(_build(output_data_model, row, output_fields, where))
    repeated = repeated_ids(ids)
    if repeated:
        raise DataError(f"{source}: ids in column {id_field!r} must be unique; {repeated}.")
    return Dataset(ids, xs, ys if output_data_model is not None else None)


def _jsonl_text(source: str) -> str:
    if "://" not in source:
        path = Path(source)
        if not path.exists():
            raise DataError(f"Data file not found: {path}")
        return path.read_text(encoding="utf-8")
    import pyarrow.fs as pafs

    try:
        fs, inner = pafs.FileSystem.from_uri(source)
        with fs.open_input_stream(inner) as src:
            return src.read().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"Data file not found: {source}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {source}: {exc}") from exc


def read_jsonl_rows(source: str | Path, limit: int | None = None) -> list[dict]:
    """The JSON objects of a JSONL file, a local path or a pyarrow URI (`s3://...`).

    Blank lines are skipped; at most `limit` rows are returned.

    Raises:
        DataError: a missing or unreadable file, or a line that is not JSON (named).

    Example:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "d.jsonl")
        >>> _ = open(f, "w").write(chr(10).join(['{"q": 1}', '', '{"q": 2}']))
        >>> read_jsonl_rows(f)
        [{'q': 1}, {'q': 2}]
    """
    source = str(source)
    rows = []
    for line_no, line in enumerate(_jsonl_text(source).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}, line {line_no}: not valid JSON ({exc.msg}).") from None
        if limit is not None and len(rows) >= limit:
            break
    return rows


def load_jsonl(path: str | Path, input_data_model: type[DataModel],
               output_data_model: type[DataModel] | None = None, *,
               input_fields: Mapping[str, str] | None = None,
               output_fields: Mapping[str, str] | None = None, id_field: str | None = "id",
               limit: int | None = None) -> Dataset:
    """Load a JSONL file (one JSON object a line; a local path or a URI) into a Dataset.

    Raises:
        DataError: naming the file, the line and the field, for an unreadable line, a
            missing column or a value that does not fit the model.
    """
    rows = read_jsonl_rows(path, limit)
    return rows_to_dataset(rows, input_data_model, output_data_model, input_fields,
                           output_fields, id_field, source=str(path))


def load_parquet(path: str, input_data_model: type[DataModel],
                 output_data_model: type[DataModel] | None = None, *,
                 input_fields: Mapping[str, str] | None = None,
                 output_fields: Mapping[str, str] | None = None, id_field: str | None = "id",
                 limit: int | None = None) -> Dataset:
    """Load a Parquet file (a local path or a pyarrow filesystem URI such as s3://...)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read Parquet data {path}: {exc}") from exc
    if limit is not None:
        table = table.slice(0, limit)
    return rows_to_dataset(table.to_pylist(), input_data_model, output_data_model, input_fields,
                           output_fields, id_field, source=str(path))
