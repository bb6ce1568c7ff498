"""Inputs and outputs of `bulk_evaluate`: the programs, the Parquet data, the results folder.

Everything here runs on the driver, before or after the Ray Data pipeline; nothing imports
Ray. Paths are local paths or pyarrow filesystem URIs (`s3://bucket/prefix`, `gs://...`).

Layout of a results folder (`out`)::

    manifest.json                what the rows are the results of: data, id field, column
                                 mapping, programs (id -> payload hash), reward and metrics
    part-<run>-<seq>.parquet     per-sample rows (`RESULT_COLUMNS`), each file written whole
                                 (a temporary file then a move on local disks; one PUT on
                                 object stores), so a killed run leaves only complete files;
                                 the footer holds the exact metric states of the file's rows
                                 (merged for the rows that succeeded, one per failed row)
    summary.json                 written when a run completes: rewards, metrics, counts, time

A row *failed* when it was scored but has an error (an LM call that failed for good, an
answer that did not parse); a row that does not fit the program's schemas is *invalid*
(reward null) and stays as it is, since scoring it again would give the same. A rerun
first takes the failed rows out of the folder (`ResultStore.retire_failed`: each part file
holding some is rewritten without them, its footer keeping the states of the other rows),
then reads the `(program_id, id)` pairs still there and scores the rest: missing rows and
failed ones. So the folder holds at most one row per `(program_id, id)` at any time, and
the summary, computed from every part file, old and new, counts each row once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from synaray.errors import CheckpointError, ConfigError, DataError
from synaray.program_payload import read_program_file, without_data_models

__all__ = ["RESULT_SCHEMA", "DataInfo", "ProgramSpec", "ResultStore", "failed_mask",
           "inspect_data", "payload_hash", "resolve_programs", "top_k_from_run"]

RESULT_SCHEMA = pa.schema([
    ("id", pa.string()), ("program_id", pa.string()), ("prediction", pa.string()),
    ("reward", pa.float64()), ("error", pa.string()), ("lm_calls", pa.int64()),
    ("lm_failures", pa.int64()), ("prompt_tokens", pa.int64()),
    ("completion_tokens", pa.int64()), ("cost", pa.float64()),
])
"""Columns of the per-sample result files (`prediction` is the output JSON, null on failure;
`reward` is null for a row that does not fit the program's schemas)."""

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
_META_KEY = b"synaray.bulk"


def failed_mask(table: pa.Table) -> pa.ChunkedArray:
    """Rows scored with an error (reward set, error set): those a rerun retries."""
    return pc.and_(pc.is_valid(table.column("error")), pc.is_valid(table.column("reward")))


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of a local path or a URI such as `s3://bucket/key`."""
    if "://" not in str(uri):
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    try:
        return pafs.FileSystem.from_uri(str(uri))
    except (pa.ArrowInvalid, ValueError, OSError) as exc:
        raise DataError(f"Cannot open {uri}: {exc}") from exc


def _kind(fs: pafs.FileSystem, path: str) -> pafs.FileType:
    return fs.get_file_info(path).type


# --- programs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgramSpec:
    """One program to score: its id in the results, its saved payload (JSON, what the
    scorer actors rebuild), where it came from, and the program itself when the driver
    already has it (the user's `Program`, or the one `read_program_file` built), so that
    `bulk_evaluate` does not build it again.

    Example:
        >>> spec = resolve_programs("runs/demo/best_program.json")[0]  # doctest: +SKIP
        >>> spec.program_id, spec.program.name  # doctest: +SKIP
        ('best_program', 'demo')
    """

    program_id: str
    payload: dict
    source: str
    program: Any = field(default=None, compare=False, repr=False)


def payload_hash(payload: Mapping[str, Any]) -> str:
    """A short content hash of what decides a program's answers (config, state, compile;
    not the data model class names, which safe mode may drop: the schemas stay)."""
    key = {k: without_data_models(payload.get(k)) for k in ("config", "state",
                                                              "compile_config")}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_programs(program: Any, top_k: int | None = None) -> list[ProgramSpec]:
    """The programs to score, from a Program, a path, a run folder, a list or a dict of them
    (or `ProgramSpec`s resolved before: they are kept as they are).

    Program files are read with `synaray.program_payload.read_program_file` (in safe mode
    unless an enclosing `synaray.saving.safe_mode_scope(False)` trusts them): each is built
    once, here, and its spec keeps that program.

    A run folder (with `best_program.json`) gives its best program, or with `top_k` its `k`
    best candidates on validation (ids: candidate ids). A dict names the programs
    `{program_id: program_or_path}`; otherwise ids are program names or file names.

    Raises:
        ConfigError: an unusable value, `top_k` without a run folder, or repeated ids.
        CheckpointError: a missing or bad program file.
    """
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ConfigError(f"Invalid value for argument `top_k`. Received: {top_k!r}. "
                          "Expected an integer >= 1 or None.")
    if isinstance(program, Mapping):
        specs = [s for pid, p in program.items() for s in _specs_of(p, top_k, str(pid))]
    elif isinstance(program, (list, tuple)):
        specs = [s for p in program for s in _specs_of(p, top_k, None)]
    else:
        specs = _specs_of(program, top_k, None)
    if not specs:
        raise ConfigError("Invalid value for argument `program`: no program given.")
    ids = [s.program_id for s in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(f"Program ids must be unique; {repeated} repeat. Pass a dict "
                          "{program_id: program} to name them.")
    return specs


def _specs_of(value: Any, top_k: int | None, program_id: str | None) -> list[ProgramSpec]:
    if isinstance(value, ProgramSpec):
        if top_k is not None:
            raise ConfigError(f"`top_k` needs a run folder; {value.source} was resolved "
                              "already (resolve the run folder with `top_k` instead).")
        return [value if program_id is None else replace(value, program_id=program_id)]
    if hasattr(value, "to_payload"):
        return [ProgramSpec(program_id or value.name, value.to_payload(),
                            f"program {value.name!r}", value)]
    if isinstance(value, (str, os.PathLike)):
        uri = os.fspath(value)
        fs, path = filesystem(uri)
        if _kind(fs, path) == pafs.FileType.Directory:
            specs = top_k_from_run(uri, top_k or 1)
            if program_id is not None and len(specs) == 1:
                return [replace(specs[0], program_id=program_id)]
            return specs
        if top_k is not None:
            raise ConfigError(f"`top_k` needs a run folder (with best_program.json and "
                              f"optimizer_state.json); {uri} is not a folder.")
        stem = os.path.splitext(os.path.basename(path.rstrip("/")))[0]
        saved = read_program_file(uri)
        return [ProgramSpec(program_id or stem, saved.payload, saved.source, saved.program)]
    raise ConfigError(f"Invalid value for argument `program`. Received: {value!r}. Expected "
                      "a Program, the path of a saved program JSON or of a run folder, or a "
                      "list or dict of them.")


def top_k_from_run(run_uri: str, k: int = 1) -> list[ProgramSpec]:
    """The `k` best candidates of a run folder on validation, best first, as programs.

    The architecture comes from `best_program.json`, each candidate's state from
    `optimizer_state.json`; candidates scored on the whole validation split are ranked by
    mean reward (the run's best first). Ids are candidate ids.

    Example:
        >>> specs = top_k_from_run("synaray_runs/demo", k=3)  # doctest: +SKIP
        >>> [s.program_id for s in specs]  # doctest: +SKIP
        ['3f1c9a0b2d4e', '0a9b8c7d6e5f', '11aa22bb33cc']
    """
    base = str(run_uri).rstrip("/")
    from synaray.runs.checkpoint import parse_checkpoint
    from synaray.runs.files import BEST_PROGRAM, OPTIMIZER_STATE

    saved = read_program_file(f"{base}/{BEST_PROGRAM}")
    best = saved.payload
    if k == 1:
        from synaray.optimizers.protocol import candidate_id

        return [ProgramSpec(candidate_id(best.get("state") or {}), best, saved.source,
                            saved.program)]
    fs, path = filesystem(f"{base}/{OPTIMIZER_STATE}")
    try:
        with fs.open_input_stream(path) as src:
            state = json.loads(src.read())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Cannot read {base}/{OPTIMIZER_STATE}: {exc}") from exc
    if "table" not in state:  # a run checkpoint (the one format), not a bare optimizer state
        state = parse_checkpoint(state, f"{base}/{OPTIMIZER_STATE}").optimizer
    ranked = rank_candidates(state)[:k]
    return [ProgramSpec(cid, {**best, "state": cstate}, f"{base} candidate {cid}")
            for cid, cstate in ranked]


def rank_candidates(state: Mapping[str, Any]) -> list[tuple[str, dict]]:
    """(candidate id, state) of an optimizer state's fully validated candidates, best first.

    Validation is the "val" split if the score table has one, else "train"; a candidate
    counts only if it was scored on as many examples as the most validated one.
    """
    rows = state.get("table") or []
    split = "val" if any(r[1] == "val" for r in rows) else "train"
    sums: dict[str, list[float]] = {}
    for cid, row_split, _eid, reward, *_ in rows:
        if row_split == split:
            sums.setdefault(cid, []).append(float(reward))
    full = max((len(v) for v in sums.values()), default=0)
    states = {c["id"]: c["state"] for c in state.get("candidates") or []}
    best_id = state.get("best_id")
    scored = [(cid, sum(v) / len(v)) for cid, v in sums.items()
              if len(v) == full and cid in states]
    scored.sort(key=lambda item: (item[0] != best_id, -item[1]))
    return [(cid, states[cid]) for cid, _ in scored]


# --- data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataInfo:
    """What `inspect_data` found: the Parquet files (paths on their filesystem), their
    columns and row count."""

    uri: str
    paths: list[str]
    columns: list[str]
    num_rows: int


def _parquet_paths(uri: str) -> tuple[pafs.FileSystem, list[str]]:
    fs, path = filesystem(uri)
    kind = _kind(fs, path)
    if kind == pafs.FileType.NotFound:
        raise DataError(f"Data not found: {uri}")
    if kind == pafs.FileType.File:
        return fs, [path]
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    paths = sorted(i.path for i in infos if i.type == pafs.FileType.File
                   and i.path.endswith(".parquet")
                   and not os.path.basename(i.path).startswith((".", "_")))
    if not paths:
        raise DataError(f"No .parquet files in the data folder {uri}")
    return fs, paths


def inspect_data(uri: str, id_field: str) -> tuple[DataInfo, pafs.FileSystem, pa.Array]:
    """Check the Parquet data before any work: files, columns, unique non-null ids.

    Only the id column is read (a few bytes a row); it is returned (as strings) with the
    data's description and filesystem.

    Raises:
        DataError: a missing file or folder, unreadable Parquet, a missing id column, a null
            or repeated id; the message names the file and the column.
    """
    fs, paths = _parquet_paths(uri)
    try:
        dataset = pads.dataset(paths, filesystem=fs, format="parquet")
        columns = list(dataset.schema.names)
        if id_field not in columns:
            raise DataError(f"{uri}: no id column {id_field!r}; the columns are {columns}. "
                            "Pass `id_field` (ids must be unique).")
        ids = dataset.to_table(columns=[id_field]).column(id_field)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"Cannot read Parquet data {uri}: {exc}") from exc
    strings = _check_ids(uri, id_field, ids)
    return DataInfo(str(uri), paths, columns, len(ids)), fs, strings


def _check_ids(uri: str, id_field: str, ids: pa.ChunkedArray) -> pa.Array:
    if ids.null_count:
        raise DataError(f"{uri}: {ids.null_count} rows have no id (null {id_field!r}); every "
                        "row needs a unique id.")
    strings = pc.cast(ids, pa.string()).combine_chunks()
    if pc.count_distinct(strings).as_py() != len(strings):
        counts = pc.value_counts(strings)
        repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        example = repeated[0]["values"].as_py()
        raise DataError(f"{uri}: ids in column {id_field!r} must be unique; {len(repeated)} "
                        f"repeat (e.g. {example!r}).")
    return strings


# --- results --------------------------------------------------------------------------------
class ResultStore:
    """The results folder: part files written whole, done ids, manifest and summary.

    Example:
        >>> import tempfile, pyarrow as pa
        >>> store = ResultStore(tempfile.mkdtemp())
        >>> rows = {c.name: [None] for c in RESULT_SCHEMA}
        >>> rows.update(id=["a"], program_id=["p"], reward=[1.0])
        >>> _ = store.write_part(pa.table(rows, schema=RESULT_SCHEMA), {"metric_states": {}})
        >>> store.done_ids(["p"])["p"].to_pylist()
        ['a']
    """

    def __init__(self, out: str) -> None:
        self.uri = str(out).rstrip("/") or "/"
        self.fs, self.root = filesystem(self.uri)
        if _kind(self.fs, self.root) == pafs.FileType.File:
            raise ConfigError(f"Invalid value for argument `out`: {out} is a file; expected "
                              "a folder (created if missing).")
        self.fs.create_dir(self.root, recursive=True)
        self.run_token = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._seq = 0

    def _path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def part_paths(self) -> list[str]:
        """The committed part files, oldest first."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.root))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File
                      and os.path.basename(i.path).startswith("part-")
                      and i.path.endswith(".parquet"))

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file whole: temporary file then move locally, one PUT on object stores."""
        final = self._path(name)
        if not isinstance(self.fs, pafs.LocalFileSystem):
            with self.fs.open_output_stream(final) as dst:
                dst.write(data)
            return
        tmp = self._path(f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with self.fs.open_output_stream(tmp) as dst:
                dst.write(data)
            self.fs.move(tmp, final)
        except BaseException:
            if _kind(self.fs, tmp) != pafs.FileType.NotFound:
                self.fs.delete_file(tmp)
            raise

    def write_part(self, table: pa.Table, meta: Mapping[str, Any]) -> str:
        """Commit one part file (rows plus `meta` JSON in its footer); returns its name."""
        table = table.cast(RESULT_SCHEMA).replace_schema_metadata(
            {_META_KEY: json.dumps(meta, separators=(",", ":"))})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        name = f"part-{self.run_token}-{self._seq:06d}.parquet"
        self._seq += 1
        self.write_bytes(name, sink.getvalue().to_pybytes())
        return name

    def iter_parts(self, columns: Sequence[str]) -> Iterator[tuple[pa.Table, dict]]:
        """Each committed part file: the given columns and its footer metadata."""
        for path in self.part_paths():
            yield self._read_part(path, columns)

    def _read_part(self, path: str, columns: Sequence[str] | None) -> tuple[pa.Table, dict]:
        try:
            table = pq.read_table(path, columns=None if columns is None else list(columns),
                                  filesystem=self.fs)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CheckpointError(f"Cannot read result file {path}: {exc}") from exc
        raw = (table.schema.metadata or {}).get(_META_KEY, b"{}")
        return table, json.loads(raw)

    def _read_meta(self, path: str) -> dict:
        """A part file's footer metadata, without reading its rows."""
        try:
            with self.fs.open_input_file(path) as src:
                metadata = pq.ParquetFile(src).schema_arrow.metadata or {}
        except (pa.ArrowInvalid, OSError) as exc:
            raise CheckpointError(f"Cannot read result file {path}: {exc}") from exc
        return json.loads(metadata.get(_META_KEY, b"{}"))

    def retire_failed(self) -> int:
        """Take the failed rows out of the folder, so that a rerun scores them again.

        Each part file holding failed rows is rewritten without them (a new file whose
        footer names the one it `replaces`, then the old one is deleted; a run killed in
        between leaves both, and the next call deletes the replaced one). The new footer
        keeps the merged metric states of the rows that succeeded. A part file written
        before failed rows had their own states is retired whole: its rows are scored again.

        Returns:
            The rows taken out (failed rows, plus the other rows of old-style files).
        """
        paths = self.part_paths()
        names = {os.path.basename(p): p for p in paths}
        retired = 0
        for path in paths:
            if os.path.basename(path) not in names:  # deleted just above
                continue
            meta = self._read_meta(path)
            if meta.get("replaces") in names:  # a rewrite the last run could not finish
                self.fs.delete_file(names.pop(meta["replaces"]))
        for path in list(names.values()):
            table, _ = self._read_part(path, ["error", "reward"])
            count = pc.sum(failed_mask(table)).as_py() or 0
            if not count:
                continue
            table, meta = self._read_part(path, None)
            failed = failed_mask(table)
            kept = table.filter(pc.invert(failed))
            if "row_states" in meta and kept.num_rows:
                self.write_part(kept, {"metric_states": meta.get("metric_states") or {},
                                       "row_states": {},
                                       "replaces": os.path.basename(path)})
                retired += count
            else:
                retired += table.num_rows
            self.fs.delete_file(path)
        return retired

    def done_ids(self, program_ids: Sequence[str]) -> dict[str, pa.Array]:
        """The ids in the folder, per program id (empty arrays when none): rows that
        succeeded or are invalid, and, unless `retire_failed` ran first, failed rows."""
        chunks: dict[str, list[pa.Array]] = {pid: [] for pid in program_ids}
        for table, _ in self.iter_parts(["id", "program_id"]):
            for pid in program_ids:
                mask = pc.equal(table.column("program_id"), pid)
                chunks[pid].extend(pc.filter(table.column("id"), mask).chunks)
        return {pid: pa.concat_arrays(c) if c else pa.array([], pa.string())
                for pid, c in chunks.items()}

    def read_json(self, name: str) -> Any:
        path = self._path(name)
        if _kind(self.fs, path) == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as src:
            try:
                return json.loads(src.read())
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{self.uri}/{name} is not valid JSON: {exc}") from exc

    def write_json(self, name: str, value: Any) -> None:
        self.write_bytes(name, json.dumps(value, indent=2, ensure_ascii=False,
                                          default=str).encode())

    def check_manifest(self, manifest: dict) -> None:
        """Write the manifest of a new folder, or check that a rerun scores the same thing.

        Raises:
            ConfigError: the folder holds results of other data, programs or settings.
        """
        manifest = json.loads(json.dumps(manifest, default=str))
        existing = self.read_json(MANIFEST)
        if existing is None:
            if self.part_paths():
                raise ConfigError(f"{self.uri} holds result files but no {MANIFEST}; use an "
                                  "empty or new folder for `out`.")
            self.write_json(MANIFEST, manifest)
            return
        changed = sorted(k for k in set(manifest) | set(existing)
                         if existing.get(k) != manifest.get(k))
        if changed:
            raise ConfigError(
                f"{self.uri} holds results of another evaluation (different {changed}); a "
                "rerun must use the same program, data, columns, reward and metrics. Use a "
                "new folder for `out`, or delete this one.")
