"""The run layer: everything about one run's life, in one place, used by both engines.

- `files`: the names of a run's files (`optimizer_state.json`, `status.json`, ...).
- `storage`: `RunStorage`, a run's folder on a local disk or any pyarrow filesystem.
- `lease`: one writer per run name (`RunLease`).
- `naming`: a run's name, storage, and the "already exists / nothing to resume" check.
- `snapshot`: the run's data (`data/<split>.parquet`).
- `run_config`: the stored `run_config.json` (`synaray resume`).
- `checkpoint`: the one checkpointer and its loader (one schema).
- `status`: the one status builder (running / finished / failed / stopped).
- `ray_connect`: connecting to Ray (imports Ray lazily).

The fit callback that checkpoints a LocalEngine run through `checkpoint` is
`synaray.callbacks.backup_and_restore.RunStorageCheckpoint`.

Importing `synaray.runs` imports none of them; import the submodule you need.

Example:
    >>> from synaray.runs.files import STATUS
    >>> STATUS
    'status.json'
"""
