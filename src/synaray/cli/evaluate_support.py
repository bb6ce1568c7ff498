"""What `synaray evaluate` does around `bulk_evaluate`: JSONL input, the local model server.

- A JSONL file is converted once to Parquet inside the results folder
  (`<out>/input-<name>.parquet`, rows get an `id` from their line number when they have
  none), so a rerun with the same `--out` reads the same data and skips finished rows.
- When a program uses the bundled local model and no server is reachable, one runs for the
  duration of the command (exported to a Ray cluster this command starts, not to one it
  joins).
- A run described by its data (`data.inputs` / `data.outputs`, as `synaray init` writes):
  the rows are mapped to the program's fields the way `fit` read them (columns renamed,
  templates filled, choices lists) into `<out>/input-<name>.parquet` (`described_to_parquet`);
  the description comes from the run's run_config.json (`--run`) or a config (`--config`).
- The programs are read (in safe mode, see `synaray.saving`) before anything is written;
  a command that fails before any row is scored leaves no output behind (the results
  folder if it made it, else the converted JSONL); scored rows stay, for a rerun to skip.

Example:
    >>> summary = run_bulk_evaluate("runs/demo/best_program.json", "test.jsonl",  # doctest: +SKIP
    ...                             "results/")
    >>> summary["reward"]  # doctest: +SKIP
    0.7
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from synaray.data.datasets import read_jsonl_rows, repeated_ids
from synaray.errors import ConfigError, DataError

__all__ = ["described_to_parquet", "jsonl_to_parquet", "run_bulk_evaluate"]

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def jsonl_to_parquet(uri: str, out: str, id_field: str = "id") -> str:
    """Write a JSONL file's rows as `<out>/input-<name>.parquet`; returns that path."""
    rows = read_jsonl_rows(uri)
    if not rows:
        raise DataError(f"{uri}: no rows to score.")
    if id_field == "id" and all("id" not in row for row in rows):
        rows = [{"id": str(n), **row} for n, row in enumerate(rows)]
    return _write_input_rows(rows, uri, out, id_field)


def described_to_parquet(uri: str, out: str, data: Any, id_field: str = "id") -> str:
    """The rows of a JSONL or Parquet file as the fields of a program built from `data` (a
    `DataConfig` with `inputs` / `outputs`), written as `<out>/input-<name>.parquet`.

    Rows keep their id (numbered from 0 when no row has one); the expected outputs are
    included when every row has their columns (else the rows are scored unlabelled).
    """
    from synaray.config.data_files import data_format
    from synaray.config.data_program import input_row, output_row, read_file_rows

    rows = read_file_rows(uri, data_format(uri, None, uri, "--data"))
    if not rows:
        raise DataError(f"{uri}: no rows to score.")
    numbered = all(id_field not in row for row in rows)
    labelled = all((spec.column or name) in row for row in rows
                   for name, spec in (data.outputs or {}).items())
    mapped = []
    for n, row in enumerate(rows):
        where = f"{uri}, row {n + 1}"
        values = {id_field: str(n) if numbered else row.get(id_field),
                  **input_row(data, row, where)}
        if labelled:
            values.update(output_row(data, row, where))
        mapped.append(values)
    return _write_input_rows(mapped, uri, out, id_field)


def _write_input_rows(rows: list[dict], uri: str, out: str, id_field: str) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synaray.engines.bulk_io import filesystem

    repeated = repeated_ids([row.get(id_field) for row in rows])
    if repeated:
        raise DataError(f"{uri}: ids in column {id_field!r} must be unique; {repeated}.")
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{uri}: rows do not share one column layout: {exc}") from exc
    fs, root = filesystem(out)
    fs.create_dir(root, recursive=True)
    name = os.path.splitext(os.path.basename(uri.rstrip("/")))[0]
    target = f"{root.rstrip('/')}/input-{name}.parquet"
    pq.write_table(table, target, filesystem=fs)
    return target if "://" not in out else f"{out.rstrip('/')}/input-{name}.parquet"


def _absent(out: str) -> bool:
    import pyarrow.fs as pafs

    from synaray.engines.bulk_io import filesystem

    fs, root = filesystem(out)
    return fs.get_file_info(root).type == pafs.FileType.NotFound


def _remove_partial_output(out: str, created: bool, converted: str | None) -> None:
    """After a failure: nothing scored -> remove what this command wrote (best effort)."""
    import pyarrow.fs as pafs

    from synaray.engines.bulk_io import filesystem

    try:
        fs, root = filesystem(out)
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            return
        names = [os.path.basename(i.path) for i in fs.get_file_info(
            pafs.FileSelector(root, recursive=True))]
        if any(name.startswith("part-") for name in names):
            return  # scored rows: a rerun with the same --out continues from them
        if created:
            fs.delete_dir(root)
        elif converted is not None:
            fs.delete_file(filesystem(converted)[1])
    except OSError:
        pass


def _joining(address: str | None) -> bool:
    from synaray.runs.ray_connect import joins_cluster

    return joins_cluster(address)


def run_bulk_evaluate(program: Any, data: str, out: str, *, top_k: int | None = None,
                      input_fields: Mapping[str, str] | None = None,
                      output_fields: Mapping[str, str] | None = None, id_field: str = "id",
                      reward: Any = None, metrics: Sequence[Any] | None = None,
                      batch_size: int = 64, concurrency: int = 16, num_workers: int = 2,
                      address: str | None = None, verbose: bool = True,
                      preflight: bool | None = None, data_description: Any = None) -> dict:
    """`bulk_evaluate` with JSONL input and the local model handled; returns its summary.

    `data_description`: the `DataConfig` of a run described by its data (`data.inputs`):
    the rows are mapped to the program's fields first (`described_to_parquet`).

    First (unless `preflight` is False) each model of the programs gets one cheap request
    (`synaray.lm.preflight`): a model that cannot work stops the command before it writes.
    """
    from synaray.config.program_building import payload_uses_local_model
    from synaray.config.sessions import local_model_session
    from synaray.engines.ray.bulk_evaluate import bulk_evaluate
    from synaray.lm.preflight import models_in_payloads, preflight_enabled
    from synaray.lm.preflight import preflight as run_preflight
    from synaray.utils.progress import log_message

    def say(text: str) -> None:
        if verbose:
            log_message(text)

    from synaray.engines.bulk_io import resolve_programs

    # Each program file is read and built once, here (a missing or refused one fails before
    # anything is written); bulk_evaluate takes these specs and builds nothing again.
    specs = resolve_programs(program, top_k)
    payloads = [spec.payload for spec in specs]
    if preflight_enabled(preflight):  # before anything is written
        asyncio.run(run_preflight(models_in_payloads(payloads)))
    needed = any(payload_uses_local_model(p) for p in payloads)
    created, converted, source = _absent(str(out)), None, data
    try:
        if data_description is not None and data_description.inputs:
            if input_fields or output_fields:
                raise ConfigError("--input-field/--output-field: the run describes its fields "
                                  "(data.inputs/data.outputs); its columns are used as fit "
                                  "used them. Leave the field maps out.")
            data = converted = described_to_parquet(str(data), str(out), data_description,
                                                    id_field)
            say(f"rows mapped to the program's fields (data.inputs/data.outputs): {data}")
        elif str(data).lower().endswith(JSONL_SUFFIXES):
            data = converted = jsonl_to_parquet(str(data), str(out), id_field)
            say(f"JSONL converted to {data}")
        with local_model_session(needed, export=not _joining(address), say=say):
            return bulk_evaluate(specs, data, out, input_fields=input_fields,
                                 output_fields=output_fields, id_field=id_field,
                                 reward=reward, metrics=metrics,
                                 batch_size=batch_size, concurrency=concurrency,
                                 num_workers=num_workers, address=address, verbose=verbose)
    except BaseException as exc:
        _remove_partial_output(str(out), created, converted)
        if converted is not None and isinstance(exc, DataError | ConfigError) \
                and converted in str(exc):
            # name the user's file, not the copy that was just removed
            raise type(exc)(str(exc).replace(converted, str(source))) from None
        raise
