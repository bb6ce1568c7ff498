"""`bulk_evaluate`: score a chosen program (or the top K of a run) on a big Parquet dataset.

DESIGN §3: Ray Data, streaming, bounded memory whatever the dataset size. The pipeline::

    read_parquet(only the needed columns)
      -> drop rows already in `out`           (tasks; only on a rerun)
      -> blocks of `block_rows` rows          (streaming repartition: about `concurrency`
                                               rows, whole batches of `batch_size`)
      -> BulkScorer actor pool                (each actor builds the programs once and runs
                                               the batches of a block concurrently with
                                               asyncio, at most `concurrency` samples in
                                               flight; Ray Data keeps one event loop per
                                               actor, so its LM requests share one
                                               keep-alive pool)
      -> driver: part files, metric states, progress bar

The per-sample work is `synaray.engines.evaluation.evaluate_request`, the routine every
engine uses: each row runs inside a trace, its element-wise reward is computed next to the
prediction, a failure is a scored result (reward 0, error kept), never an exception. A
`BatchReward` sees one batch (`batch_size` rows) at a time: streaming never holds the whole
dataset. Metrics keep exact sufficient statistics: each block's rows that succeeded send one
metric state, a failed row its own; the driver merges them (`merge_state`) into the state of
each part file (kept in its footer) and the summary merges the files' states: never an
average of averages. What Ray Data charges per block (a task, an object, the driver's
bookkeeping) and what the scorer does per block (rows from Arrow, metric states, columns
back to Arrow) is paid once per `block_rows` rows, not once per batch.

The results folder is described in `synaray.engines.bulk_io`. A killed run loses at most
the rows of the part file it had not yet written (`rows_per_file`, `flush_every_s`); a rerun
with the same `out` scores the rows that are not in it and retries the failed ones (scored
with an error: an LM call that failed for good...), which it first takes out of the folder,
so the folder never holds two rows for one id. A failed row keeps its own metric state in
the footer (the states of the rows that succeeded are merged), so taking it out keeps the
metrics exact. The summary is `complete` only when no row is missing or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pydantic
import ray

from synaray.data.data_model import JsonDataModel, data_model_from_schema
from synaray.engines.bulk_io import (
    RESULT_SCHEMA,
    SUMMARY,
    DataInfo,
    ProgramSpec,
    ResultStore,
    failed_mask,
    inspect_data,
    payload_hash,
    resolve_programs,
)
from synaray.engines.evaluation import ProgramPool, evaluate_request
from synaray.engines.ray.rate_limiter import rate_limiter_actor
from synaray.errors import ConfigError, DataError, MissingExtraError
from synaray.optimizers.protocol import EvalRequest, EvalResult
from synaray.program_payload import program_from_payload
from synaray.runs.ray_connect import connect
from synaray.saving import deserialize_object, serialize_object
from synaray.utils.progress import Progress

__all__ = ["BulkScorer", "ColumnMap", "bulk_evaluate", "drop_done"]

SPLIT = "bulk"
SCORED_SCHEMA = RESULT_SCHEMA.append(pa.field("metric_state", pa.string()))
"""What scorer actors return: the result columns plus `metric_state` (JSON): set on a failed
row (its own) and on the first row of a block's rows that succeeded (theirs, merged)."""


# --- columns ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnMap:
    """Which data column fills which field of the program's input and expected output.

    Attributes:
        id_field: the column of unique row ids.
        input_fields: program input field -> column.
        output_fields: expected-output field -> column (the labels).
        input_schema: the program's input schema.
        output_schema: the program's output schema restricted to `output_fields`.
    """

    id_field: str
    input_fields: dict[str, str]
    output_fields: dict[str, str]
    input_schema: dict
    output_schema: dict

    @property
    def columns(self) -> list[str]:
        """The columns to read, each once: id, inputs, labels."""
        return list(dict.fromkeys([self.id_field, *self.input_fields.values(),
                                   *self.output_fields.values()]))

    @classmethod
    def build(cls, program: Any, data: DataInfo, id_field: str,
              input_fields: Mapping[str, str] | None,
              output_fields: Mapping[str, str] | None) -> ColumnMap:
        """Map fields to columns like `synaray.data.rows_to_dataset` (default: same names).

        Raises:
            ConfigError: a mapping names a field the program does not have.
            DataError: a needed column is missing (the message lists the columns).
        """
        if len(program.input_schemas) != 1:
            raise ConfigError(f"bulk_evaluate scores programs with one input; program "
                              f"{program.name!r} has {len(program.input_schemas)}.")
        in_schema, out_schema = program.input_schemas[0], program.output_schemas[0]
        inputs = _field_map("input", in_schema, input_fields, data, required=True)
        outputs = _field_map("output", out_schema, output_fields, data, required=False)
        return cls(id_field, inputs, outputs, in_schema, _restrict(out_schema, outputs))


def _field_map(side: str, schema: dict, given: Mapping[str, str] | None, data: DataInfo,
               required: bool) -> dict[str, str]:
    props = list(schema.get("properties") or {})
    if given is None:
        mapping = {f: f for f in props if f in data.columns}
        needed = [f for f in props if f in (schema.get("required") or [])] if required else []
        missing = [repr(f) for f in needed if f not in data.columns]
    else:
        unknown = [f for f in given if f not in props]
        if unknown:
            raise ConfigError(f"Invalid value for argument `{side}_fields`: the program's "
                              f"{side} has no field {unknown}; its fields are {props}.")
        mapping = {str(f): str(c) for f, c in given.items()}
        missing = [f"{c!r} (for field {f!r})" for f, c in mapping.items()
                   if c not in data.columns]
    if missing:
        raise DataError(f"{data.uri}: missing {side} column(s) {', '.join(missing)}; the "
                        f"columns are {data.columns}. Map fields to columns with "
                        f"`{side}_fields`.")
    if not mapping:
        raise DataError(f"{data.uri}: no column for any {side} field {props}; the columns "
                        f"are {data.columns}. Map fields to columns with `{side}_fields`.")
    return mapping


def _restrict(schema: dict, fields: Mapping[str, str]) -> dict:
    props = schema.get("properties") or {}
    out = {**schema, "properties": {f: props[f] for f in props if f in fields}}
    out["required"] = [f for f in schema.get("required") or [] if f in fields]
    return out


# --- the scorer (runs in Ray Data actors) -----------------------------------------------
@dataclass
class _Row:
    id: str
    x: Any = None
    y: Any = None
    error: str | None = None


@dataclass
class _Entry:
    """One program inside a scorer actor: built once, with its reward and metric configs."""

    program_id: str
    pool: ProgramPool
    state: dict
    reward: Any
    metrics: list[Any]
    output_schema: dict


def _validation_message(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}"
                     for e in exc.errors()[:5])


class BulkScorer:
    """Ray Data class UDF: scores batches of rows with one or more programs.

    Built once per actor: the programs (from their payloads), their rewards and metrics.
    `__call__` is async: Ray Data runs it on an event loop owned by the actor, so several
    batches and the rows of each batch run concurrently, at most `max_concurrency` samples
    at a time in this actor.

    Args:
        programs: `{"program_id", "payload", "reward", "metrics"}` dicts (reward and metrics
            as `serialize_object` configs).
        columns: the `ColumnMap`.
        max_concurrency: samples in flight in this actor.
        batch_size: rows per request of the per-sample routine (a `BatchReward` sees one
            such batch at a time); a block holds one or more batches. None: the block.
        done: `[ObjectRef]` of `{program_id: pyarrow string array}` ids already written, or
            None; such (program, row) pairs are not scored again.
        rate_limiter: a `RateLimiterActor` handle shared by the cluster, or None.

    Example:
        >>> scorer = BulkScorer(programs, columns, max_concurrency=16)  # doctest: +SKIP
        >>> scored = asyncio.run(scorer(batch))  # a pyarrow table of rows  # doctest: +SKIP
        >>> scored.column_names[:4]  # doctest: +SKIP
        ['id', 'program_id', 'prediction', 'reward']
    """

    def __init__(self, programs: Sequence[Mapping[str, Any]], columns: ColumnMap,
                 max_concurrency: int, batch_size: int | None = None, done: list | None = None,
                 rate_limiter: Any = None) -> None:
        self.columns = columns
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size
        self._x_model = data_model_from_schema(columns.input_schema)
        self._y_model = data_model_from_schema(columns.output_schema)
        self.entries = [self._entry(p) for p in programs]
        done_ids = ray.get(done[0]) if done else {}
        self.done = {pid: frozenset(ids.to_pylist()) for pid, ids in done_ids.items()}
        self._semaphore: asyncio.Semaphore | None = None
        if rate_limiter is not None:
            from synaray.engines.ray.rate_limiter import install_rate_limiter

            install_rate_limiter(rate_limiter)

    @staticmethod
    def _entry(spec: Mapping[str, Any]) -> _Entry:
        payload, pid = spec["payload"], spec["program_id"]
        state = payload.get("state") or {}
        pool = ProgramPool(payload, size=1)
        program = pool.get(pid, state)
        return _Entry(pid, pool, state, deserialize_object(spec["reward"]),
                      list(spec["metrics"]), program.output_schemas[0])

    def parse(self, row: Mapping[str, Any]) -> _Row:
        """A data row as (id, x, y), or with the error when it does not fit the schemas."""
        cm = self.columns
        out = _Row(str(row[cm.id_field]))
        for side, fields, model, schema in (
                ("input", cm.input_fields, self._x_model, cm.input_schema),
                ("label", cm.output_fields, self._y_model, cm.output_schema)):
            try:
                value = model.model_validate({f: row[c] for f, c in fields.items()})
            except pydantic.ValidationError as exc:
                out.error = f"the row's {side} does not fit the program: " \
                            f"{_validation_message(exc)}"
                return out
            setattr(out, "x" if side == "input" else "y",
                    JsonDataModel(json=value.get_json(), schema=schema))
        return out

    async def __call__(self, block: pa.Table) -> pa.Table:
        """Score a block of rows: its batches (`batch_size` rows each) run concurrently."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        rows = [self.parse(r) for r in block.to_pylist()]
        outs = await asyncio.gather(*(self._score(e, rows) for e in self.entries))
        columns: dict[str, list] = {name: [] for name in SCORED_SCHEMA.names}
        for out in outs:
            for name, values in out.items():
                columns[name].extend(values)
        return pa.table(columns, schema=SCORED_SCHEMA)

    async def _score(self, entry: _Entry, rows: list[_Row]) -> dict[str, list]:
        done = self.done.get(entry.program_id, frozenset())
        todo = [r for r in rows if r.id not in done]
        valid = [r for r in todo if r.error is None]
        size = self.batch_size or len(valid) or 1
        batches = [valid[i:i + size] for i in range(0, len(valid), size)]
        scored = await asyncio.gather(*(
            evaluate_request(entry.pool, entry.reward,
                             EvalRequest(entry.program_id, entry.state,
                                         tuple(r.id for r in batch), SPLIT),
                             [(r.x, r.y) for r in batch], self._semaphore)
            for batch in batches))
        results = {r.example_id: r for part in scored for r in part}
        states = await _metric_states(entry, valid, results)
        return _result_columns(entry.program_id, todo, results, states)


async def _metric_states(entry: _Entry, valid: list[_Row],
                         results: Mapping[str, EvalResult]) -> dict[str, str]:
    """Metric states (`get_state` JSON) for the driver, from metrics fresh for this block.

    The rows that succeeded share one state, computed in one pass over them and carried by
    the first of them (the driver merges every state it receives, so one merged state per
    block counts the same as one per row); a failed row carries its own, which the driver
    keeps apart so that a rerun can take the row out.
    """
    if not entry.metrics:
        return {}
    metrics = [deserialize_object(config) for config in entry.metrics]

    async def state_of(rows: list[_Row]) -> str:
        y_true, y_pred = [], []
        for row in rows:
            pred = results[row.id].y_pred
            y_true.append(row.y)
            y_pred.append(None if pred is None
                          else JsonDataModel(json=pred, schema=entry.output_schema))
        state = {}
        for metric in metrics:
            metric.reset_state()
            await metric.update_state(y_true, y_pred)
            state[metric.name] = metric.get_state()
        return json.dumps(state, separators=(",", ":"))

    succeeded = [r for r in valid if results[r.id].error is None]
    states = {row.id: await state_of([row]) for row in valid
              if results[row.id].error is not None}
    if succeeded:
        states[succeeded[0].id] = await state_of(succeeded)
    return states


def _result_columns(program_id: str, rows: list[_Row], results: Mapping[str, EvalResult],
                    states: Mapping[str, str]) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name in SCORED_SCHEMA.names}
    for row in rows:
        res = results.get(row.id)
        values = {"id": row.id, "program_id": program_id, "metric_state": states.get(row.id)}
        if res is None:  # the row did not fit the schemas: not scored
            values.update(prediction=None, reward=None, error=row.error, lm_calls=0,
                          lm_failures=0, prompt_tokens=0, completion_tokens=0, cost=0.0)
        else:
            values.update(
                prediction=None if res.y_pred is None else json.dumps(res.y_pred,
                                                                      ensure_ascii=False),
                reward=res.reward, error=res.error, lm_calls=res.lm_calls,
                lm_failures=res.lm_failures, prompt_tokens=res.prompt_tokens,
                completion_tokens=res.completion_tokens, cost=res.cost)
        for name, value in values.items():
            out[name].append(value)
    return out


_DONE_CACHE: dict[str, list[pa.Array]] = {}


def drop_done(batch: pa.Table, done: list, id_field: str) -> pa.Table:
    """Ray Data UDF: keep the rows that some program has not scored yet.

    Args:
        batch: a block of input rows.
        done: `[ObjectRef]` of `{program_id: pyarrow string array of done ids}`.
        id_field: the id column.
    """
    key = done[0].hex()
    if key not in _DONE_CACHE:
        _DONE_CACHE.clear()
        _DONE_CACHE[key] = list(ray.get(done[0]).values())
    ids = pc.cast(batch.column(id_field), pa.string())
    keep = None
    for done_ids in _DONE_CACHE[key]:
        todo = pc.invert(pc.is_in(ids, value_set=done_ids))
        keep = todo if keep is None else pc.or_(keep, todo)
    return batch if keep is None else batch.filter(keep)


# --- the driver -----------------------------------------------------------------------------
class _PartWriter:
    """Buffers result rows on the driver and commits them as part files, with the exact
    metric states of each file's rows in its footer: merged for the rows that succeeded,
    one per failed row (`row_states`), so a rerun can take failed rows out exactly."""

    def __init__(self, store: ResultStore, metric_configs: Mapping[str, list],
                 rows_per_file: int, flush_every_s: float) -> None:
        self.store = store
        self.metrics = {pid: [deserialize_object(c) for c in cfgs]
                        for pid, cfgs in metric_configs.items()}
        self.rows_per_file = rows_per_file
        self.flush_every_s = flush_every_s
        self._tables: list[pa.Table] = []
        self._row_states: dict[str, dict[str, str]] = {}
        self._rows = 0
        self._since = time.monotonic()
        self.files: list[str] = []

    def add(self, table: pa.Table) -> None:
        """Take one block of scored rows; commit a part file when one is due."""
        rows = zip(table.column("program_id").to_pylist(), table.column("id").to_pylist(),
                   table.column("metric_state").to_pylist(),
                   failed_mask(table).to_pylist(), strict=True)
        for pid, row_id, raw, failed in rows:
            if raw is None:
                continue
            if failed:  # kept apart: a rerun retries the row and drops this state
                self._row_states.setdefault(pid, {})[row_id] = raw
                continue
            states = json.loads(raw)
            for metric in self.metrics[pid]:
                metric.merge_state(states[metric.name])
        self._tables.append(table.drop_columns(["metric_state"]))
        self._rows += table.num_rows
        if self._rows >= self.rows_per_file or \
                time.monotonic() - self._since >= self.flush_every_s:
            self.commit()

    def commit(self) -> None:
        """Write the buffered rows as one part file (nothing if the buffer is empty)."""
        if self._rows:
            states = {pid: {m.name: m.get_state() for m in ms}
                      for pid, ms in self.metrics.items()}
            meta = {"metric_states": states, "row_states": self._row_states}
            self.files.append(self.store.write_part(pa.concat_tables(self._tables), meta))
            for metrics in self.metrics.values():
                for metric in metrics:
                    metric.reset_state()
        self._tables, self._rows, self._since = [], 0, time.monotonic()
        self._row_states = {}


_SUM_COLUMNS = ("lm_calls", "lm_failures", "prompt_tokens", "completion_tokens", "cost")


def summarize(store: ResultStore, metric_configs: Mapping[str, list]) -> dict[str, dict]:
    """Per program: rows, mean reward, metrics (merged states), failures and LM usage,
    computed from every part file in `store` (old runs and this one)."""
    metrics = {pid: [deserialize_object(c) for c in cfgs] for pid, cfgs in metric_configs.items()}
    totals: dict[str, dict[str, float]] = {pid: {} for pid in metric_configs}
    aggregations = [("id", "count"), ("reward", "sum"), ("reward", "count"),
                    ("error", "count"), ("failed", "sum")] + [(c, "sum") for c in _SUM_COLUMNS]
    for table, meta in store.iter_parts(["program_id", "id", "reward", "error",
                                         *_SUM_COLUMNS]):
        row_states = [(pid, json.loads(raw)) for pid, by_id in
                      (meta.get("row_states") or {}).items() for raw in by_id.values()]
        for pid, states in [*(meta.get("metric_states") or {}).items(), *row_states]:
            for metric in metrics.get(pid, []):
                metric.merge_state(states[metric.name])
        table = table.append_column("failed", pc.cast(failed_mask(table), pa.int64()))
        for row in table.group_by("program_id").aggregate(aggregations).to_pylist():
            acc = totals.setdefault(row.pop("program_id"), {})
            for name, value in row.items():
                acc[name] = acc.get(name, 0) + (value or 0)
    return {pid: _program_summary(acc, metrics.get(pid, [])) for pid, acc in totals.items()}


def _program_summary(acc: Mapping[str, float], metrics: list[Any]) -> dict:
    scored = int(acc.get("reward_count", 0))
    return {
        "rows": int(acc.get("id_count", 0)),
        "reward": acc.get("reward_sum", 0.0) / scored if scored else None,
        "metrics": {m.name: m.result() for m in metrics},
        "failures": int(acc.get("error_count", 0)),
        "failed_rows": int(acc.get("failed_sum", 0)),
        "invalid_rows": int(acc.get("id_count", 0)) - scored,
        **{c: (float if c == "cost" else int)(acc.get(f"{c}_sum", 0)) for c in _SUM_COLUMNS},
    }


@dataclass
class _Plan:
    """Everything checked on the driver before any Ray work."""

    specs: list[ProgramSpec]
    programs: list[dict]
    columns: ColumnMap
    data: DataInfo
    fs: Any
    store: ResultStore
    done: dict[str, pa.Array]
    to_score: int = 0
    retried: int = 0

    @property
    def metric_configs(self) -> dict[str, list]:
        return {p["program_id"]: p["metrics"] for p in self.programs}

    @property
    def skipped(self) -> int:
        """Input rows (times programs) already in `out` before this run."""
        return self.data.num_rows * len(self.specs) - self.to_score


def _program_entries(specs: list[ProgramSpec], reward: Any,
                     metrics: Sequence[Any] | None) -> tuple[list[dict], Any]:
    """Every program on the driver, built once (a spec's own program when it has one: the
    user's, or the one its file was read into; a bad file fails here, not in an actor),
    with its reward and metric configs; returns the entries and the first program."""
    from synaray import metrics as metrics_module
    from synaray import rewards as rewards_module

    entries, first = [], None
    for spec in specs:
        program = spec.program
        if program is None:  # a run's candidate: the best program's file with its state
            program = program_from_payload(spec.payload, source=spec.source)
        first = first or program
        if program.input_schemas != first.input_schemas:
            raise ConfigError(f"Program {spec.program_id!r} takes other inputs than "
                              f"{specs[0].program_id!r}; score them on separate runs.")
        rew = rewards_module.get(reward) if reward is not None else program.reward
        if rew is None:
            raise ConfigError(f"Program {spec.program_id!r} ({spec.source}) has no reward: "
                              "pass `reward=` or compile the program before saving it.")
        mets = [metrics_module.get(m) for m in metrics] if metrics is not None \
            else program.metrics
        entries.append({"program_id": spec.program_id, "payload": spec.payload,
                        "reward": serialize_object(rew),
                        "metrics": [serialize_object(m) for m in mets]})
    return entries, first


def _manifest(plan: _Plan) -> dict:
    data = plan.data.uri if "://" in plan.data.uri else os.path.abspath(plan.data.uri)
    return {"format": "synaray.bulk_evaluate", "version": 1, "data": data,
            "id_field": plan.columns.id_field, "input_fields": plan.columns.input_fields,
            "output_fields": plan.columns.output_fields,
            "programs": {p["program_id"]: {"payload_hash": payload_hash(p["payload"]),
                                           "reward": p["reward"], "metrics": p["metrics"]}
                         for p in plan.programs}}


def _make_plan(program: Any, data: str, out: str, top_k: int | None, reward: Any,
               metrics: Sequence[Any] | None, id_field: str,
               input_fields: Mapping[str, str] | None,
               output_fields: Mapping[str, str] | None) -> _Plan:
    specs = resolve_programs(program, top_k)
    entries, first = _program_entries(specs, reward, metrics)
    info, fs, ids = inspect_data(os.fspath(data), id_field)
    columns = ColumnMap.build(first, info, id_field, input_fields, output_fields)
    store = ResultStore(os.fspath(out))
    plan = _Plan(specs, entries, columns, info, fs, store, {})
    store.check_manifest(_manifest(plan))
    plan.retried = store.retire_failed()
    plan.done = store.done_ids([s.program_id for s in specs])
    plan.to_score = sum(len(ids) - (pc.sum(pc.is_in(ids, value_set=done)).as_py() or 0)
                        for done in plan.done.values())
    return plan


def _check_settings(batch_size: int, concurrency: int, num_workers: int | tuple[int, int],
                    worker_num_cpus: float, rows_per_file: int,
                    flush_every_s: float) -> tuple[int, int]:
    for name, value in (("batch_size", batch_size), ("concurrency", concurrency),
                        ("rows_per_file", rows_per_file)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                              "Expected an integer >= 1.")
    for name, value in (("flush_every_s", flush_every_s), ("worker_num_cpus", worker_num_cpus)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"Invalid value for argument `{name}`. Received: {value!r}. "
                              "Expected a number > 0.")
    sizes = num_workers if isinstance(num_workers, tuple) else (num_workers, num_workers)
    if len(sizes) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                                  for n in sizes) or sizes[0] > sizes[1]:
        raise ConfigError(f"Invalid value for argument `num_workers`. Received: "
                          f"{num_workers!r}. Expected an integer >= 1 or a (min, max) pair.")
    return sizes


def _dataset(plan: _Plan, batch_size: int, concurrency: int, sizes: tuple[int, int],
             worker_num_cpus: float, rate_limiter: Any) -> Any:
    """The lazy Ray Data pipeline: read, drop done rows, re-block, score."""
    data = _ray_data()
    ds = data.read_parquet(plan.data.paths, filesystem=plan.fs,
                               columns=plan.columns.columns)
    done_ref = None
    if any(len(ids) for ids in plan.done.values()):
        done_ref = ray.put(plan.done)
        ds = ds.map_batches(drop_done, batch_size=None, batch_format="pyarrow",
                            fn_kwargs={"done": [done_ref], "id_field": plan.columns.id_field})
    rows = block_rows(batch_size, concurrency)
    ds = ds.repartition(target_num_rows_per_block=rows)
    calls_per_actor = math.ceil(concurrency / rows) + 1
    compute = data.ActorPoolStrategy(min_size=sizes[0], max_size=sizes[1],
                                max_concurrent_calls_per_actor=calls_per_actor)
    return ds.map_batches(
        BulkScorer, batch_size=rows, batch_format="pyarrow", compute=compute,
        num_cpus=worker_num_cpus,
        fn_constructor_kwargs={"programs": plan.programs, "columns": plan.columns,
                               "max_concurrency": concurrency, "batch_size": batch_size,
                               "done": [done_ref] if done_ref is not None else None,
                               "rate_limiter": rate_limiter})


def block_rows(batch_size: int, concurrency: int) -> int:
    """Rows per Ray Data block: what one actor has in flight (`concurrency`), rounded up to
    whole batches. Ray Data pays a task, an object and the driver's bookkeeping per block, so
    blocks of a single small batch cost more CPU than the rows themselves; blocks much
    bigger than the rows in flight would only delay the part files and the progress bar.

    Example:
        >>> block_rows(128, 256), block_rows(64, 16), block_rows(8, 20)
        (256, 64, 24)
    """
    return batch_size * max(1, math.ceil(concurrency / batch_size))


def _ray_data() -> Any:
    """`ray.data`, or a clear error when Ray was installed without its `data` extra."""
    try:
        import ray.data
    except ImportError as exc:
        raise MissingExtraError(f"bulk_evaluate needs Ray Data ({exc}); install it with "
                                "pip install 'ray[data]'.") from exc
    return ray.data


#: Ray Data settings while bulk_evaluate builds its dataset (datasets copy the context when
#: they are made, and their tasks run with that copy): Ray Data's own progress output off
#: while our bar (rows, LM calls, failures) runs, and no memory poller in each map task (a
#: thread and /proc reads per block, for statistics that bulk_evaluate does not show).
_DATA_CONTEXT = {"enable_progress_bars": False, "memory_usage_poll_interval_s": None}


@contextlib.contextmanager
def _data_context() -> Iterator[None]:
    """Ray Data's context set to `_DATA_CONTEXT` while the dataset is made and run."""
    context = _ray_data().DataContext.get_current()
    saved = {name: getattr(context, name) for name in _DATA_CONTEXT}
    for name, value in _DATA_CONTEXT.items():
        setattr(context, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(context, name, value)


def _stream(ds: Any, writer: _PartWriter, bar: Progress) -> int:
    """Consume the scored blocks on the driver; returns the rows written."""
    written = 0
    batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
    try:
        for table in batches:
            writer.add(table)
            written += table.num_rows
            errors = table.num_rows - table.column("error").null_count
            bar.update(table.num_rows, lm_calls=pc.sum(table.column("lm_calls")).as_py() or 0,
                       failures=errors)
    finally:
        writer.commit()  # every finished row is kept, also on Ctrl-C or an error
        getattr(batches, "close", lambda: None)()
    return written


def _warn_if_no_cpu_left(reserved: float) -> None:
    total = ray.cluster_resources().get("CPU", 0.0)
    if total - reserved < 1.0:
        warnings.warn(
            f"The scorer actors reserve {reserved:g} of the cluster's {total:g} CPUs, which "
            "leaves less than one for the Parquet read tasks: unless the cluster scales up, "
            "the evaluation waits forever. Lower `worker_num_cpus` or `num_workers`.",
            RuntimeWarning, stacklevel=3)


def bulk_evaluate(program: Any, data: str | os.PathLike, out: str | os.PathLike, *,
                  input_fields: Mapping[str, str] | None = None,
                  output_fields: Mapping[str, str] | None = None, id_field: str = "id",
                  reward: Any = None, metrics: Sequence[Any] | None = None,
                  top_k: int | None = None, batch_size: int = 64, concurrency: int = 64,
                  num_workers: int | tuple[int, int] = 2, worker_num_cpus: float = 0.25,
                  rows_per_file: int = 10_000, flush_every_s: float = 30.0,
                  rate_limits: Mapping[str, Any] | None = None, address: str | None = None,
                  runtime_env: dict | None = None, verbose: bool = True) -> dict:
    """Score a program (or several) on a Parquet dataset with Ray Data, streaming.

    Memory stays bounded whatever the dataset size: rows stream from the Parquet files
    through an actor pool to part files in `out`; the driver holds one part file's rows and
    the ids already written. A rerun with the same `out` skips the rows already written
    (a run killed half-way finishes without scoring them again), retries the failed ones
    (scored with an error, such as an LM call that failed for good; they are replaced, never
    duplicated) and its summary covers all rows, old and new. Rows that do not fit the
    program's schemas (`invalid_rows`) are not retried: the data decides their outcome.

    Args:
        program: a `Program`; the path or URI of a saved program JSON (`Program.save`, a
            run's `best_program.json`); a run folder (its best program, or with `top_k`
            its best candidates); or a list or dict `{program_id: ...}` of those, all
            scored on the same rows. Results carry a `program_id` column (the dict key, the
            program name, the file name or the candidate id).
        data: a Parquet file or a folder of them, local or a URI (`s3://bucket/data/`).
        out: the results folder (local or URI), created if missing.
        input_fields: program input field -> column (default: the same names).
        output_fields: expected-output field -> column (default: the program's output
            fields that are columns); these are the labels given to the reward.
        id_field: the column of unique row ids (required).
        reward: overrides the programs' compiled reward (an identifier or instance).
        metrics: overrides the programs' compiled metrics.
        top_k: with a run folder as `program`, score its `top_k` best candidates.
        batch_size: rows per request of the per-sample routine (a `BatchReward` sees one
            batch at a time); Ray Data blocks hold about `concurrency` rows, whole batches.
        concurrency: samples in flight per worker. LM calls are also capped by each
            `LanguageModel`'s own `max_concurrency`.
        num_workers: scorer actors, or a (min, max) autoscaling range.
        worker_num_cpus: CPUs reserved per scorer actor. Scoring waits on the model most
            of the time; what the actors reserve must leave CPUs for the read tasks, or the
            pipeline waits forever (a warning says so when the cluster is too small).
        rows_per_file: rows per part file; with `flush_every_s`, bounds the work a killed
            run loses and the rows the driver holds.
        flush_every_s: a part file is written at least this often while rows arrive.
        rate_limits: per model `{"requests_per_minute": ..., "tokens_per_minute": ...}`,
            shared by all workers.
        address: None uses the running Ray (or `RAY_ADDRESS`), else starts a local one;
            "auto" or "host:port" joins that cluster.
        runtime_env: Ray runtime environment when this call connects to Ray.
        verbose: show a progress bar (rows, LM calls, failures, rate, ETA).

    Returns:
        The summary, also written to `out/summary.json`: `reward` and `metrics` of the
        first program (the only one, or the run's best), `programs` (per program: rows,
        reward, metrics, failures, failed_rows, invalid_rows, LM calls, LM failures and
        tokens), `input_rows`, `rows`, `missing_rows`, `failed_rows` (scored with an
        error: a rerun retries them), `invalid_rows`, `failures` (rows with an error),
        `lm_calls`, `lm_failures`, `complete` (no row missing or failed), and `run` (rows
        scored, skipped and retried, time, rows/s).

    Raises:
        DataError: missing data, a missing column, null or repeated ids.
        CheckpointError: a missing or bad program file.
        ConfigError: bad arguments, or an `out` holding results of another evaluation.

    Example:
        >>> summary = bulk_evaluate("runs/demo/best_program.json",  # doctest: +SKIP
        ...                         "s3://bucket/questions.parquet", "results/",
        ...                         input_fields={"query": "question"}, num_workers=4)
        >>> summary["reward"], summary["rows"]  # doctest: +SKIP
        (0.82, 100000)
    """
    sizes = _check_settings(batch_size, concurrency, num_workers, worker_num_cpus,
                            rows_per_file, flush_every_s)
    plan = _make_plan(program, data, out, top_k, reward, metrics, id_field, input_fields,
                      output_fields)
    t0, scored = time.monotonic(), 0
    if plan.to_score > 0:
        started = connect(address, runtime_env)
        try:
            scored = _score(plan, batch_size, concurrency, sizes, worker_num_cpus,
                            rows_per_file, flush_every_s, rate_limits, verbose)
        finally:
            if started:
                ray.shutdown()
    return _write_summary(plan, scored, time.monotonic() - t0)


def _pool_sizes(sizes: tuple[int, int], rows: int, rows_per_block: int) -> tuple[int, int]:
    """No more scorer actors than blocks (`block_rows`): a small input starts fewer
    (an actor without a block would only hold memory, and Ray Data warns about it).

    Example:
        >>> _pool_sizes((2, 4), rows=50, rows_per_block=64), _pool_sizes((2, 4), 1000, 64)
        ((1, 1), (2, 4))
    """
    blocks = max(1, math.ceil(rows / rows_per_block))
    return min(sizes[0], blocks), min(sizes[1], blocks)


def _score(plan: _Plan, batch_size: int, concurrency: int, sizes: tuple[int, int],
           worker_num_cpus: float, rows_per_file: int, flush_every_s: float,
           rate_limits: Mapping[str, Any] | None, verbose: bool) -> int:
    """Run the pipeline to the end; returns the rows written by this run."""
    rows = math.ceil(plan.to_score / max(1, len(plan.specs)))
    sizes = _pool_sizes(sizes, rows, block_rows(batch_size, concurrency))
    _warn_if_no_cpu_left(sizes[0] * worker_num_cpus)
    limiter = rate_limiter_actor(rate_limits)
    try:
        writer = _PartWriter(plan.store, plan.metric_configs, rows_per_file, flush_every_s)
        with _data_context(), Progress(plan.to_score, desc="bulk evaluate", verbose=verbose,
                                       unit="rows") as bar:
            ds = _dataset(plan, batch_size, concurrency, sizes, worker_num_cpus, limiter)
            return _stream(ds, writer, bar)
    finally:
        if limiter is not None:
            ray.kill(limiter)


def _write_summary(plan: _Plan, scored: int, elapsed: float) -> dict:
    programs = summarize(plan.store, plan.metric_configs)
    ids = [s.program_id for s in plan.specs]
    first = programs.get(ids[0]) or {}
    rows = sum(p["rows"] for p in programs.values())
    missing = plan.data.num_rows * len(ids) - rows
    failed = sum(p["failed_rows"] for p in programs.values())
    summary = {
        "data": plan.data.uri, "out": plan.store.uri, "program_ids": ids,
        "reward": first.get("reward"), "metrics": first.get("metrics", {}),
        "input_rows": plan.data.num_rows, "rows": rows,
        "complete": missing == 0 and failed == 0,
        "missing_rows": missing, "failed_rows": failed,
        "invalid_rows": sum(p["invalid_rows"] for p in programs.values()),
        "failures": sum(p["failures"] for p in programs.values()),
        "lm_calls": sum(p["lm_calls"] for p in programs.values()),
        "lm_failures": sum(p["lm_failures"] for p in programs.values()),
        "run": {"rows_scored": scored,
                "rows_skipped": plan.skipped,
                "rows_retried": plan.retried,
                "time_s": round(elapsed, 3),
                "rows_per_s": round(scored / elapsed, 2) if elapsed > 0 else None},
        "programs": programs,
    }
    plan.store.write_json(SUMMARY, summary)
    return summary
