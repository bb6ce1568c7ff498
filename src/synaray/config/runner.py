"""`run_fit(config)`: one whole run from a `RunConfig`, as `synaray fit` and sweeps do it.

Steps: build the compiled program, read the data, hold the local model server and the Ray
connection open as needed, save the resolved config as `run_config.json` in the run's
folder (so `synaray resume` can rebuild the run), score the program as given on the
validation and test data (`training.compare_initial`; stored, so a resume does not score it
again), fit with the config's engine, score the best program on the same rows, write the
per-row predictions before and after (`predictions_<split>.parquet`, see
`synaray.config.before_after`), and return a `FitOutcome` with both (also written as
`outcome.json`).

A run's folder is `<storage>/<run_name>/`, owned by the run layer (`synaray.runs`: its
files, name, lease, data snapshot, stored config, checkpoints and status); LocalEngine runs
keep the same layout as Ray runs through `RunStorageCheckpoint`
(`synaray.callbacks.backup_and_restore`).

Example:
    >>> from synaray.config import load_run_config, run_fit  # doctest: +SKIP
    >>> outcome = run_fit(load_run_config(  # doctest: +SKIP
    ...     "examples/object_counting_random_few_shot.toml"))
    >>> outcome.best_program_path, outcome.val_reward  # doctest: +SKIP
    ('/home/me/synaray_runs/object_counting-.../best_program.json', 0.4)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from synaray.config.schema import RunConfig
from synaray.errors import ConfigError
from synaray.runs.files import BEFORE, BEST_PROGRAM, OUTCOME, before_file, predictions_file
from synaray.runs.files import RUN_CONFIG as RUN_CONFIG_FILE
from synaray.runs.naming import DEFAULT_STORAGE, open_existing_run, resolve_storage

__all__ = ["RUN_CONFIG_FILE", "FitOutcome", "load_saved_run_config", "open_existing_run",
           "resolve_storage", "run_fit", "run_fit_async"]



@dataclasses.dataclass
class FitOutcome:
    """What a run produced.

    Attributes:
        run_name: the run's name (its folder under `storage`).
        storage: where runs are kept (an absolute local path or a URI).
        best_program_path: the best program's JSON (`synaray.Program.load` reads it).
        val_reward: the best program's mean reward on the validation data (or training data
            when there is none).
        test_reward: its mean reward on the test split, or None without one.
        history: per-epoch logs (`History.history`: reward, val_reward, val_<metric>...).
        lm_calls: LM calls made by the search (evaluations and proposals).
        lm_failures: those of them that failed (after their retries).
        test_metrics: metric values on the test split.
        val_metrics: metric values of the best program on the validation data (last epoch).
        stop_reason: why the search stopped (epochs completed, a budget reached...).
        generations: training generations run.
        time_s: wall time of this call.
        val_reward_before: the initial program's mean reward on the validation data (None
            without validation data or with `training.compare_initial: false`).
        test_reward_before: its mean reward on the test split.
        comparison: per split ("val", "test"): rows, before, after, gain, its 95%
            confidence interval (ci_low, ci_high; paired bootstrap), improved, regressed.
        predictions: per split, the Parquet file of per-row predictions before and after.

    Example:
        >>> FitOutcome("demo", "/runs", "/runs/demo/best_program.json", 0.8, None,
        ...            {"val_reward": [0.8]}, 120).to_dict()["lm_calls"]
        120
    """

    run_name: str
    storage: str
    best_program_path: str
    val_reward: float | None
    test_reward: float | None
    history: dict[str, list]
    lm_calls: int
    test_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    val_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    stop_reason: str | None = None
    generations: int = 0
    time_s: float = 0.0
    val_reward_before: float | None = None
    test_reward_before: float | None = None
    comparison: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    predictions: dict[str, str] = dataclasses.field(default_factory=dict)
    lm_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DetachedRun:
    """A run started with `detach`: it goes on on the cluster (`synaray status --watch`)."""

    run_name: str
    storage: str


def load_saved_run_config(storage: str, run_name: str,
                          overrides: Mapping[str, Any] | None = None, *,
                          trust_code: bool = False, given: RunConfig | None = None) -> RunConfig:
    """The resolved config that `run_fit` saved in a run's folder (for `synaray resume`).

    Local files are not required to exist: a resumed run reads its training data from the
    run's folder. The stored file (`synaray.runs.run_config.read_run_config`) may name code
    outside synaray (a builder, a reward function...) only with `trust_code`, or when
    `given` (the config the run was started with) names the same code
    (`synaray.config.checks.check_stored_run_config`); otherwise it is checked and built in
    safe mode (`synaray.saving`). Keep `run_fit` of an untrusted config inside
    `synaray.saving.safe_mode_scope(True)` too, as `synaray resume` does.

    Raises:
        ConfigError: no such run, no run_config.json in it, or code that is not trusted.
    """
    from synaray.config.checks import check_run_config, check_stored_run_config
    from synaray.config.loading import parse_run_config
    from synaray.runs.run_config import read_run_config
    from synaray.saving import safe_mode_scope

    store = open_existing_run(storage, run_name)
    data = read_run_config(store)
    source = _shown(store, RUN_CONFIG_FILE)
    config = parse_run_config(data, source, overrides, check=False)
    trusted = check_stored_run_config(config, source, trust_code, given)
    with safe_mode_scope(not trusted, source=source):
        check_run_config(config, source, check_files=False)
    return config


def _shown(store: Any, name: str) -> str:
    """A run file's URI for messages (credentials in a URI are masked)."""
    return getattr(store, "display_uri", store.uri)(name)


def _printer(verbose: bool) -> Callable[[str], None]:
    from synaray.utils.progress import log_message

    def say(text: str) -> None:
        if verbose:
            log_message(text)  # "synaray: text", or a JSON line with --log-format json

    return say


def _engine(config: RunConfig, storage: str, run_name: str) -> Any:
    settings = config.engine
    if settings.type == "local":
        from synaray.engines import LocalEngine

        return LocalEngine(max_concurrency=settings.max_concurrency)
    from synaray.engines.ray import RayEngine

    limits = {m: v.model_dump(exclude_none=True) for m, v in (settings.rate_limits or {}).items()}
    return RayEngine(address=settings.address, num_evaluators=settings.num_evaluators,
                     max_concurrency=settings.max_concurrency, storage=storage,
                     run_name=run_name, rate_limits=limits, max_inflight=settings.max_inflight,
                     chunk_size=settings.chunk_size, env_vars=settings.env_vars)


@dataclasses.dataclass
class _Run:
    """One run being prepared: the resolved names and its storage."""

    config: RunConfig
    run_name: str
    storage: str
    store: Any
    resume: bool
    say: Callable[[str], None]
    lease: Any = None


def _open_run(config: RunConfig, program: Any, resume: bool,
              say: Callable[[str], None]) -> _Run:
    from synaray.runs.naming import claim_run, new_run_name
    from synaray.runs.storage import RunStorage, redact_uri

    storage, relative = resolve_storage(config.storage)
    if relative and config.uses_ray() and _joining(config):
        message = (f"storage {config.storage or DEFAULT_STORAGE!r} is a relative path, "
                   f"resolved to {storage}: under `ray job submit` that is inside the job's "
                   "temporary working dir, lost when the job ends. Give an absolute path or "
                   "a URI (s3://...) with --storage.")
        warnings.warn(message, UserWarning, stacklevel=3)
        say(f"WARNING: {message}")
    if resume and not config.run_name:
        raise ConfigError(f"{config.source}: run_name: resuming needs the name of the run "
                          "(run_name in the config, or --run-name).")
    run_name = config.run_name or new_run_name(program.name)
    store = RunStorage(storage, run_name)
    # One writer per run name: taken before anything is written (RunLockedError at once if
    # a live run holds it); a resumed Ray run leaves it to RayEngine (its optimizer actor),
    # which also decides whether there is something to resume.
    shown = redact_uri(storage)
    lease = claim_run(store, resume=resume, take_lease=not (resume and config.uses_ray()),
                      check_resume=config.engine.type == "local",
                      resume_hint=f"continue it with `synaray resume {run_name} --storage "
                                  f"{shown}`")
    return _Run(config, run_name, storage, store, resume, say, lease)


def _joining(config: RunConfig) -> bool:
    from synaray.runs.ray_connect import joins_cluster

    return joins_cluster(config.engine.address)


def _load_data(run: _Run, read: Any = None) -> Any:
    """The run's splits (`read`: those of a new run, read before its folder existed; a
    resume reads the copy in the run folder), and their copy written to the run folder."""
    from synaray.config.data_loading import load_splits, splits_from_storage
    from synaray.runs.snapshot import has_snapshot, write_snapshot

    if read is not None:
        splits = read
    elif run.resume and has_snapshot(run.store):
        splits = splits_from_storage(run.store, run.config)
    else:
        splits = load_splits(run.config)
    if not run.resume:  # a resume reads the copy back
        local = not run.config.uses_ray()  # RayEngine writes its own copy of train and val
        held_out = run.config.data is not None and run.config.data.test_split
        write_snapshot(run.store, train=splits.train if local else None,
                       val=splits.val if local else None,
                       test=splits.test if held_out else None)
    run.say(f"data: {len(splits.train)} training, "
            f"{len(splits.val) if splits.val is not None else 0} validation, "
            f"{len(splits.test) if splits.test is not None else 0} test examples")
    return splits


async def _fit(run: _Run, program: Any, splits: Any, callbacks: Sequence[Any] | None,
               verbose: bool, detach: bool = False) -> Any:
    from synaray.callbacks.backup_and_restore import RunStorageCheckpoint

    config = run.config
    engine = _engine(config, run.storage, run.run_name)
    engine.detach = detach
    cbs = list(callbacks or [])
    if config.engine.type == "local":  # first: a failing callback cannot skip a checkpoint
        cbs.insert(0, RunStorageCheckpoint(run.store, resume=run.resume))
    shown = _shown(run.store, "")
    run.say(f"{'resuming' if run.resume else 'fitting'} run {run.run_name!r} with "
            f"{type(program.optimizer).__name__} on the {config.engine.type} engine; "
            f"checkpoints in {shown}")
    history = await program.fit(splits.train, validation_data=splits.val,
                                epochs=config.training.epochs,
                                batch_size=config.training.batch_size, callbacks=cbs,
                                engine=engine, verbose=verbose, resume=run.resume,
                                preflight=False,  # done by run_fit, before anything is written
                                circuit_breaker=config.training.circuit_breaker.to_fit_argument())
    return history


_SPLITS = (("val", "validation"), ("test", "test"))


def _scored_splits(splits: Any, compare: bool) -> dict[str, Any]:
    """The splits scored before and after: validation and test (test only without compare)."""
    datasets = {"val": splits.val, "test": splits.test} if compare else {"test": splits.test}
    return {name: ds for name, ds in datasets.items() if ds is not None}


async def _score(run: _Run, program: Any, datasets: dict[str, Any], label: str,
                 verbose: bool) -> tuple[dict, dict]:
    """Per split: the evaluation logs and the per-row records of the program as it is."""
    from synaray.config.before_after import row_records

    logs, rows = {}, {}
    for split, dataset in datasets.items():
        engine = _engine(run.config, run.storage, f"{run.run_name}-{label}{split}")
        result = await program.evaluate(dataset, batch_size=run.config.engine.max_concurrency,
                                        engine=engine, verbose=verbose, return_predictions=True)
        rows[split] = row_records(result.pop("predictions"))
        logs[split] = result
    return logs, rows


async def _score_before(run: _Run, program: Any, splits: Any, verbose: bool
                        ) -> tuple[dict, dict]:
    """The initial program's scores: read from the run folder when stored, else measured."""
    from synaray.config.before_after import rows_table

    store = run.store
    if not run.config.training.compare_initial:
        return {}, {}
    if run.resume and store.exists(BEFORE):
        logs = store.read_json(BEFORE)
        rows = {split: store.read_table(before_file(split)).to_pylist()
                for split in logs if store.exists(before_file(split))}
        run.say(f"initial program: scores read from {_shown(store, BEFORE)}")
        return logs, rows
    datasets = _scored_splits(splits, True)
    if not datasets:
        return {}, {}
    sizes = ", ".join(f"{len(d)} {dict(_SPLITS)[s]}" for s, d in datasets.items())
    run.say(f"scoring the initial program on {sizes} examples")
    logs, rows = await _score(run, program, datasets, "before-", verbose)
    for split, records in rows.items():
        store.write_table(before_file(split), rows_table(records))
    store.write_json(BEFORE, logs)
    return logs, rows


async def _score_after(run: _Run, program: Any, splits: Any, verbose: bool
                       ) -> tuple[dict, dict]:
    """The best program's scores on the splits scored before (the test split at least)."""
    datasets = _scored_splits(splits, run.config.training.compare_initial)
    if datasets:
        run.say("scoring the best program on " + ", ".join(
            f"{len(d)} {dict(_SPLITS)[s]}" for s, d in datasets.items()) + " examples")
    return await _score(run, program, datasets, "", verbose)


def _compare(run: _Run, splits: Any, before: dict, after: dict) -> tuple[dict, dict]:
    """Per split: the paired summary, and the per-row predictions file written."""
    from synaray.config.before_after import compare, prediction_table

    summaries, files = {}, {}
    datasets = _scored_splits(splits, True)
    for split, dataset in datasets.items():
        if split not in before or split not in after:
            continue
        table = prediction_table(dataset, before[split], after[split])
        name = predictions_file(split)
        run.store.write_table(name, table)
        files[split] = run.store.uri(name)
        summaries[split] = compare(table.column("reward_before").to_pylist(),
                                   table.column("reward_after").to_pylist(),
                                   seed=run.config.training.seed)
    return summaries, files


def _outcome(run: _Run, history: Any, after: dict, before: dict, started: float) -> FitOutcome:
    optimizer = history.optimizer
    test = after.get("test", {})
    metrics = {k: v for k, v in test.items()
               if k not in ("reward", "lm_calls", "lm_failures", "failures", "time_s",
                            "predictions")}
    val_metrics = {k.removeprefix("val_"): v[-1] for k, v in history.history.items()
                   if k.startswith("val_") and k != "val_reward" and v}
    return FitOutcome(
        run_name=run.run_name, storage=run.storage,
        best_program_path=run.store.uri(BEST_PROGRAM),
        val_reward=optimizer.best_val_reward, test_reward=test.get("reward"),
        history=dict(history.history), lm_calls=int(optimizer.spent.lm_calls),
        lm_failures=int(optimizer.spent.lm_failures),
        test_metrics=metrics, val_metrics=val_metrics, stop_reason=optimizer.stop_reason,
        generations=int(optimizer.generation), time_s=time.monotonic() - started,
        val_reward_before=before.get("val", {}).get("reward"),
        test_reward_before=before.get("test", {}).get("reward"))


async def run_fit_async(config: RunConfig, *, callbacks: Sequence[Any] | None = None,
                        resume: bool = False, verbose: bool = True,
                        detach: bool = False) -> FitOutcome | DetachedRun:
    """`run_fit` for code already inside an event loop."""
    if detach and not (config.uses_ray() and _joining(config)):
        raise ConfigError("--detach needs a Ray cluster that outlives this command: run on "
                          "one with engine.address (e.g. --address auto or host:port).")
    from synaray.config.data_loading import load_splits
    from synaray.config.data_program import with_resolved_labels
    from synaray.config.program_building import build_program, uses_local_model
    from synaray.config.sessions import lease_session, local_model_session, ray_session
    from synaray.lm.preflight import preflight, preflight_enabled
    from synaray.runs.run_config import write_run_config

    started = time.monotonic()
    say = _printer(verbose)
    config = with_resolved_labels(config, say)  # saved resolved: a resume reads no data
    program = await build_program(config)
    # a new run reads its data first: a data error writes nothing, not even a run folder
    read = None if resume else load_splits(config)
    if preflight_enabled(config.training.preflight):  # before anything is written
        checked = await preflight([program, program.reward, program.optimizer])
        if checked:
            say(f"preflight: {checked} model(s) answered")
    run = _open_run(config, program, resume, say)
    with lease_session(run.lease):  # released at the end, also on an error
        splits = _load_data(run, read)
        joining = config.uses_ray() and _joining(config)
        with contextlib.ExitStack() as stack:
            stack.enter_context(local_model_session(uses_local_model(program), not joining,
                                                    say))
            if config.uses_ray():
                stack.enter_context(ray_session(config.engine.address, say))
            if not resume:
                write_run_config(run.store, run.config)
            before, before_rows = await _score_before(run, program, splits, verbose)
            history = await _fit(run, program, splits, callbacks, verbose, detach)
            if detach:  # the search runs on the cluster; nothing to score here yet
                return DetachedRun(run.run_name, run.storage)  # type: ignore[return-value]
            after, after_rows = await _score_after(run, program, splits, verbose)
        outcome = _outcome(run, history, after, before, started)
        outcome.comparison, outcome.predictions = _compare(run, splits, before_rows, after_rows)
        run.store.write_json(OUTCOME, outcome.to_dict())
    return outcome


def run_fit(config: RunConfig, *, callbacks: Sequence[Any] | None = None,
            resume: bool = False, verbose: bool = True,
            detach: bool = False) -> FitOutcome | DetachedRun:
    """Run the whole fit a config describes; see the module docstring for the steps.

    Args:
        config: from `load_run_config` (or `parse_run_config`).
        callbacks: `synaray.callbacks.Callback`s given to `program.fit` (their
            `on_batch_end(generation, logs)` runs after every generation).
        resume: continue the run `config.run_name` from its checkpoint in
            `config.storage` (data from the run's folder, optimizer state included).
        verbose: print progress (steps, a progress bar, the run's folder).
        detach: return once the search started on the cluster (RayEngine joining a
            cluster): it goes on there to the end; returns a `DetachedRun` (its name and storage).

    Returns:
        A `FitOutcome` (a `DetachedRun`, its name and storage, with `detach`).

    Raises:
        ConfigError: a bad config, an existing run (without `resume`) or nothing to resume.
        DataError: unreadable data.
        PreflightError: a model cannot work (checked before anything is written, unless
            `training.preflight` is false).
        LMFailuresError: the circuit breaker stopped the run (`training.circuit_breaker`);
            its checkpoint is kept for `resume`.
    """
    return asyncio.run(run_fit_async(config, callbacks=callbacks, resume=resume,
                                     verbose=verbose, detach=detach))
