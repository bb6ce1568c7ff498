"""`sweep()`: one whole optimization run per setting, run as Ray Tune trials, then ranked.

The driver reads the sweep file, validates its `sweep:` section, expands it into trials
(`expand_trials`) and validates the run config of every trial (the file without `sweep:`,
plus the trial's overrides) before anything starts, so a bad key or value fails at once and
names the key. Each trial is a Tune trial (a Ray actor holding `cpus_per_trial` CPUs) that
calls `run_fit` with a `TuneReporter` callback, by default with `engine.type: local`, and
finally reports its validation reward, LM calls and best program path. The driver ranks the
trials and writes `results.csv` and `results.json`. Trials do not score the program as given
(`training.compare_initial` defaults to false in a sweep, `TRIAL_DEFAULTS`: that would be
the same extra evaluation in every trial); a sweep file that sets it keeps its value.

Layout of `<storage>/<sweep name>/`::

    results.csv, results.json   the ranked table
    t000/ t001/ ...             Ray Tune's trial folders (result.json, progress.csv)
    runs/<sweep name>-t000/     each trial's run (best_program.json, outcome.json, ...)
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synaray.errors import ConfigError
from synaray.runs.naming import DEFAULT_STORAGE
from synaray.sweeps.results import SweepResult
from synaray.sweeps.spec import SweepSpec, expand_trials, parse_sweep_spec
from synaray.sweeps.tune_reporter import TuneReporter

__all__ = ["SweepPlan", "plan_sweep", "run_plan", "run_trial", "sweep"]

SWEEP_KEY = "sweep"
LOCAL_LM_ENV = "SYNARAY_LOCAL_LM_API_BASE"
#: What a trial's last report carries besides the generation metrics.
FINAL_KEYS = ("val_reward", "test_reward", "lm_calls", "lm_failures", "generations", "run_name",
              "best_program_path", "stop_reason")


@dataclass
class SweepPlan:
    """A validated sweep, ready to run.

    Attributes:
        name: the sweep's name (its folder under `storage`).
        storage: where the sweep writes (an absolute local path or a URI).
        spec: the `sweep:` section.
        trials: one `{dotted.key: value}` dict of overrides per trial.
        configs: each trial's validated `RunConfig` (its run name and storage set).
        source: the sweep file (named in messages).

    Example:
        >>> plan = plan_sweep("examples/sweep_sports.yaml")  # doctest: +SKIP
        >>> len(plan.trials), plan.configs[0].run_name  # doctest: +SKIP
        (4, 'sweep_sports-20250101-120000-t000')
    """

    name: str
    storage: str
    spec: SweepSpec
    trials: list[dict[str, Any]]
    configs: list[Any]
    source: str

    @property
    def root(self) -> str:
        """`<storage>/<name>`: the table, Tune's trial folders and the runs."""
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def runs_storage(self) -> str:
        """The `storage` of every trial's run."""
        return f"{self.root}/runs"

    def uses_local_model(self) -> bool:
        """Whether any trial's config names the bundled `local/...` language model."""
        from synaray.config.program_building import payload_uses_local_model

        return any(payload_uses_local_model(c.model_dump(mode="json")) for c in self.configs)


def _absolute(storage: str) -> str:
    return storage if "://" in storage else os.path.abspath(os.path.expanduser(storage))


def _split(data: Mapping[str, Any], source: str) -> tuple[dict, SweepSpec]:
    if SWEEP_KEY not in data:
        raise ConfigError(f"{source}: no `sweep` section; a sweep file is a run config plus "
                          "`sweep: {method: grid, parameters: {KEY: {values: [...]}}}`.")
    run = {k: v for k, v in data.items() if k != SWEEP_KEY}
    try:
        spec = parse_sweep_spec(data[SWEEP_KEY])
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return run, spec


def _check_overrides(spec: SweepSpec, overrides: Mapping[str, Any], source: str) -> None:
    for key in overrides:
        if key in spec.parameters:
            raise ConfigError(f"{source}: override {key!r}: the sweep varies this key "
                              f"(sweep.parameters[{key!r}]); remove one of the two.")
        if key.split(".")[0] in ("run_name", "storage"):
            raise ConfigError(f"{source}: override {key!r}: a sweep names and places its "
                              "trials' runs itself (use --name and --storage).")


#: Set in every trial unless the sweep file, an override or the grid sets it: scoring the
#: program as given (the before/after table of `fit`) costs each trial one evaluation of
#: the validation and test data, the same for every trial of a sweep.
TRIAL_DEFAULTS = {"training.compare_initial": False}


def _trial_defaults(run: Mapping[str, Any], overrides: Mapping[str, Any],
                    trial: Mapping[str, Any]) -> dict[str, Any]:
    defaults = {}
    for key, value in TRIAL_DEFAULTS.items():
        section, name = key.split(".", 1)
        given = run.get(section) if isinstance(run.get(section), Mapping) else {}
        if key not in overrides and key not in trial and name not in given:
            defaults[key] = value
    return defaults


def _trial_config(run: dict, source: str, overrides: dict, index: int, trial: dict) -> Any:
    from synaray.config import parse_run_config

    try:
        return parse_run_config(run, source, {**_trial_defaults(run, overrides, trial),
                                              **overrides, **trial})
    except ConfigError as exc:
        settings = ", ".join(f"{k}={v!r}" for k, v in trial.items())
        raise ConfigError(f"sweep trial {index} ({settings}): {exc}") from None


def _check_new(root: str) -> None:
    import pyarrow.fs as pafs

    fs, path = (pafs.FileSystem.from_uri(root) if "://" in root
                else (pafs.LocalFileSystem(), root))
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        raise ConfigError(f"A sweep already exists at {root}; choose another name (--name or "
                          "sweep.name) or storage.")


def plan_sweep(config: str | os.PathLike | Mapping[str, Any], *, storage: str | None = None,
               name: str | None = None, overrides: Mapping[str, Any] | None = None
               ) -> SweepPlan:
    """Read and check a sweep without running anything; every trial's config is validated.

    Args:
        config: a sweep file (a run config in YAML, TOML or JSON plus a `sweep:` section)
            or the same as a mapping.
        storage: where the sweep writes (default: the config's `storage`, else
            `./synaray_runs`).
        name: the sweep's name (default: `sweep.name`, else the file's name and the time).
        overrides: dotted keys set in every trial (not the swept ones).

    Raises:
        ConfigError: a bad sweep field, or a trial whose settings make an invalid run
            config (the message names the trial and the key).
    """
    from synaray.config import read_config_file

    if isinstance(config, Mapping):
        source, data = "<sweep>", dict(config)
    else:
        source, data = os.fspath(config), read_config_file(config)
    run, spec = _split(data, source)
    overrides = dict(overrides or {})
    _check_overrides(spec, overrides, source)
    stem = Path(source).stem if source != "<sweep>" else "sweep"
    name = name or spec.name or f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = _absolute(storage or run.get("storage") or DEFAULT_STORAGE)
    root = f"{storage.rstrip('/')}/{name}"
    if spec.trial_engine == "local":
        overrides["engine.type"] = "local"
    trials = expand_trials(spec)
    configs = [_trial_config(run, source, {**overrides, "run_name": f"{name}-t{i:03d}",
                                           "storage": f"{root}/runs"}, i, trial)
               for i, trial in enumerate(trials)]
    return SweepPlan(name, storage, spec, trials, configs, source)


# --- inside a trial -------------------------------------------------------------------
def run_trial(config: dict, *, run_configs: list, env: dict[str, str], workdir: str,
              report: Callable[[dict], Any] | None = None) -> None:
    """The Tune trainable: run trial `config["trial"]` and report its outcome.

    Runs in the trial's Ray actor. `env` (the local model's address) is set first and the
    working directory is the driver's (Tune starts trials in a folder of their own, and a
    config's relative data paths and `module:function` names resolve from the directory the
    sweep was started in).
    """
    os.environ.update(env)
    if workdir and os.path.isdir(workdir):
        os.chdir(workdir)
        if workdir not in sys.path:
            sys.path.insert(0, workdir)
    from synaray.config import run_fit

    if report is None:
        from ray import tune

        report = tune.report
    reporter = TuneReporter(report=report)
    outcome = run_fit(run_configs[int(config["trial"])], callbacks=[reporter], verbose=False)
    final = dict(reporter.last)
    final.update({k: getattr(outcome, k) for k in FINAL_KEYS})
    final["fit_time_s"] = outcome.time_s
    report({k: v for k, v in final.items() if v is not None})


def _trial_dirname(trial: Any) -> str:
    return f"t{int(trial.config['trial']):03d}"


# --- the driver ---------------------------------------------------------------------------
def _say(verbose: bool) -> Callable[[str], None]:
    from synaray.utils.progress import log_message

    def say(text: str) -> None:
        if verbose:
            log_message(text, prefix="synaray sweep")

    return say


@contextlib.contextmanager
def _sessions(plan: SweepPlan, address: str | None, say: Callable[[str], None]
              ) -> Iterator[dict[str, str]]:
    """Hold the local model server (if a trial needs it) and Ray; yield the trials' env."""
    from synaray.config.sessions import local_model_session
    from synaray.runs.ray_connect import connected, joins_cluster

    joining = joins_cluster(address)
    with contextlib.ExitStack() as stack:
        # Not joining: one server for every trial of this machine, its address exported
        # (into the runtime_env of the cluster started below, and given to each trial).
        # Joining: each node's trials start or reuse their own server.
        needed = plan.uses_local_model() and not joining
        api_base = stack.enter_context(local_model_session(needed, True, say))
        # this process's connection if it has one, the cluster at `address` (or the job's),
        # or a new cluster on this machine, stopped at the end
        stack.enter_context(connected(address, say=say))
        yield {LOCAL_LM_ENV: api_base} if api_base else {}


def _error_text(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line.split(":")[0]]
    return (errors[-1] if errors else lines[-1] if lines else type(error).__name__)[:500]


def _row(plan: SweepPlan, result: Any) -> dict:
    index = int(result.config["trial"])
    metrics = dict(result.metrics or {})
    finished = "best_program_path" in metrics
    row: dict[str, Any] = {"trial": index,
                           "status": "error" if result.error else "ok" if finished
                           else "incomplete"}
    row.update({k: metrics.get(k) for k in ("val_reward", "reward", "test_reward",
                                            "lm_calls", "lm_failures", "generations")})
    row["time_s"] = metrics.get("fit_time_s", metrics.get("time_total_s"))
    row.update(plan.trials[index])
    row["run_name"] = metrics.get("run_name", plan.configs[index].run_name)
    row["best_program_path"] = metrics.get("best_program_path")
    row["error"] = _error_text(result.error) if result.error else None
    return row


def _write(result: SweepResult, plan: SweepPlan) -> None:
    from synaray.runs.storage import RunStorage

    store = RunStorage(plan.storage, plan.name)
    store.write_bytes("results.csv", result.to_csv().encode())
    store.write_bytes("results.json", result.to_json().encode())
    result.files = {"csv": store.uri("results.csv"), "json": store.uri("results.json")}


def run_plan(plan: SweepPlan, *, address: str | None = None,
             max_concurrent_trials: int | None = None, verbose: bool = True) -> SweepResult:
    """Run a planned sweep with Ray Tune; see `sweep`."""
    say = _say(verbose)
    _check_new(plan.root)
    with _sessions(plan, address, say) as env:
        from ray import tune

        trainable = tune.with_resources(
            tune.with_parameters(run_trial, run_configs=plan.configs, env=env,
                                 workdir=os.getcwd()),
            {"cpu": plan.spec.cpus_per_trial})
        concurrent = max_concurrent_trials or plan.spec.max_concurrent_trials
        say(f"{len(plan.trials)} trials ({plan.spec.method}) over "
            f"{', '.join(plan.spec.parameters)}; results in {plan.root}")
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(list(range(len(plan.trials))))},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent,
                                        trial_dirname_creator=_trial_dirname,
                                        trial_name_creator=_trial_dirname),
            run_config=tune.RunConfig(name=plan.name, storage_path=plan.storage,
                                      verbose=1 if verbose else 0))
        grid = tuner.fit()
        rows = [_row(plan, result) for result in grid]
    result = SweepResult(plan.name, plan.root, plan.spec.metric, plan.spec.mode,
                         list(plan.spec.parameters), rows)
    _write(result, plan)
    return result


def sweep(config: str | os.PathLike | Mapping[str, Any], *, storage: str | None = None,
          name: str | None = None, address: str | None = None,
          max_concurrent_trials: int | None = None,
          overrides: Mapping[str, Any] | None = None, verbose: bool = True) -> SweepResult:
    """Run one whole optimization per setting of a sweep file, as Ray Tune trials.

    Args:
        config: a sweep file: a run config plus a `sweep:` section (see
            `synaray.sweeps.spec`), or the same as a mapping.
        storage: where the sweep writes `<name>/` (a local folder or a URI such as
            `s3://bucket/prefix`; default: the config's `storage`, else `./synaray_runs`).
        name: the sweep's name (default: `sweep.name`, else the file name and the time).
        address: the Ray cluster to join ("auto", "host:port"); None starts one on this
            machine (unless this process is already connected).
        max_concurrent_trials: trials at once (default: `sweep.max_concurrent_trials`, else
            as many as the cluster's CPUs allow at `sweep.cpus_per_trial` each).
        overrides: dotted keys set in every trial (not the swept ones).
        verbose: print progress and Tune's trial table.

    Returns:
        A `SweepResult`: rows ranked by `sweep.metric`, the best program's path, and where
        the table was written (`results.csv`, `results.json` under `<storage>/<name>/`).

    Raises:
        ConfigError: a bad sweep or run config, before any trial starts.

    Example:
        >>> result = sweep("examples/sweep_sports.yaml")  # doctest: +SKIP
        >>> print(result.format_table())  # doctest: +SKIP
        >>> program = synaray.Program.load(result.best_program_path)  # doctest: +SKIP
    """
    plan = plan_sweep(config, storage=storage, name=name, overrides=overrides)
    return run_plan(plan, address=address, max_concurrent_trials=max_concurrent_trials,
                    verbose=verbose)
