"""`MlflowLogger`: one MLflow run per fit (what `enable_observability` adds to every fit)."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from synaray.callbacks.callback import Callback
from synaray.errors import ConfigError
from synaray.observability.lm_tracing import current_run
from synaray.observability.mlflow_import import DEFAULT_EXPERIMENT, require_mlflow

__all__ = ["MlflowLogger", "fit_params", "model_names"]

logger = logging.getLogger(__name__)

PARAM_MAX_CHARS = 500  # the smallest limit across MLflow versions and backends
SPENT_METRICS = ("lm_calls", "lm_failures", "tokens", "cost", "time_s")


class MlflowLogger(Callback):
    """Log a fit as an MLflow run: params, per-generation metrics, the best program.

    Params: the optimizer's config (flattened, `optimizer.<knob>`), batch size, epochs,
    engine, train/validation sizes, reward, metrics and model names. Metrics, with
    step = generation: `reward` (best member on the minibatch), `population_reward`,
    cumulative `lm_calls`, `lm_failures`, `tokens`, `cost`, `time_s`, `best_val_reward` once
    known, `cache_hits` (LocalEngine only: RayEngine evaluators do not report them); at
    each epoch end `val_reward` and `val_<metric>`. Artifacts: `best_program.json` (loadable
    with `Program.load`) and `history.json`. A failed or interrupted fit ends the run as
    FAILED or KILLED.

    The tracking server is checked when the fit starts (a clear error if it is down);
    later logging errors are warned about once and do not stop the fit.

    Args:
        tracking_uri: MLflow tracking URI (None: MLflow's current one).
        experiment_name: experiment of the run (created if missing).
        run_name: MLflow run name (default: the RayEngine run name, else the program's
            name and a time stamp).
        tags: extra run tags.
        log_best_program: log the best program's JSON as an artifact at the end.

    Example:
        >>> logger = MlflowLogger("http://127.0.0.1:5000", "demo")
        >>> logger.experiment_name
        'demo'
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None,
                 run_name: str | None = None, tags: dict[str, str] | None = None,
                 log_best_program: bool = True) -> None:
        super().__init__()
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name or DEFAULT_EXPERIMENT
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.log_best_program = log_best_program
        self.client: Any = None
        self.run_id: str | None = None
        self._info: dict[str, Any] = {}
        self._warned = False
        self._context_token: Any = None
        self._cache_hits_start: int | None = None

    # --- hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        mlflow = require_mlflow()
        info = dict(logs or {})
        self._info = info
        uri = self.tracking_uri or mlflow.get_tracking_uri()
        _check_reachable(uri)
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        experiment_id = self._experiment_id()
        name = self.run_name or info.get("run_name") or \
            f"{self.program.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        from synaray.version import __version__

        tags = {"synaray.program": self.program.name, "synaray.version": __version__,
                "synaray.engine": str(info.get("engine", "")),
                "synaray.resume": str(bool(info.get("resume", False))), **self.tags}
        for key in ("run_name", "storage"):
            if info.get(key):
                tags[f"synaray.{key}"] = str(info[key])
        run = self.client.create_run(experiment_id, run_name=name, tags=tags)
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = fit_params(self.program, info)
        self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()])
        self._context_token = current_run.set((self.run_id, experiment_id))
        if info.get("engine") == "LocalEngine":
            self._cache_hits_start = _cache_hits()

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        logs = logs or {}
        generation = int(logs.get("generation", step))
        values = {k: logs.get(k) for k in ("reward", "population_reward")}
        spent = self.optimizer.spent
        values.update({k: getattr(spent, k) for k in SPENT_METRICS})
        values["best_val_reward"] = self.optimizer.best_val_reward
        values["epoch"] = logs.get("epoch")
        if self._cache_hits_start is not None:
            values["cache_hits"] = _cache_hits() - self._cache_hits_start
        self._log_metrics(values, generation)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        values = {k: v for k, v in logs.items() if k.startswith("val_")}
        values["best_val_reward"] = self.optimizer.best_val_reward
        # the epoch's validation spends calls after the last generation's batch_end
        spent = self.optimizer.spent
        values.update({k: getattr(spent, k) for k in SPENT_METRICS})
        self._log_metrics(values, int(logs.get("generation", self.optimizer.generation)))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.run_id is None:
            return
        try:
            self._set_tags({"synaray.stop_reason": (logs or {}).get("stop_reason") or "",
                            "synaray.best_candidate": self.optimizer.best().id})
            self._log_artifacts()
        finally:
            self._end("FINISHED")

    def on_train_error(self, error: BaseException) -> None:
        if self.run_id is None:
            return
        killed = isinstance(error, KeyboardInterrupt | SystemExit)
        self._set_tags({"synaray.error": f"{type(error).__name__}: {error}"[:PARAM_MAX_CHARS]})
        self._end("KILLED" if killed else "FAILED")

    # --- helpers -----------------------------------------------------------------------
    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            try:
                return self.client.create_experiment(self.experiment_name)
            except MlflowException:  # created meanwhile by another process
                experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None or experiment.lifecycle_stage == "deleted":
            raise ConfigError(f"MLflow experiment {self.experiment_name!r} is deleted or "
                              "cannot be created: restore it or choose another experiment_name.")
        return experiment.experiment_id

    def _log_metrics(self, values: dict[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(v), now, step) for key, v in values.items()
                   if _is_number(v)]
        if metrics:
            self._guard(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def _set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self._guard(lambda: self.client.log_batch(
            self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()]))

    def _log_artifacts(self) -> None:
        with tempfile.TemporaryDirectory(prefix="synaray-mlflow-") as folder:
            history = {"generations": list(self.optimizer.history),
                       "spent": self.optimizer.spent.model_dump(),
                       "best_candidate": self.optimizer.best().id}
            path = Path(folder) / "history.json"
            path.write_text(json.dumps(history, indent=2), encoding="utf-8")
            self._guard(lambda: self.client.log_artifact(self.run_id, str(path)))
            if self.log_best_program:
                from synaray.runs.files import BEST_PROGRAM

                program_path = Path(folder) / BEST_PROGRAM
                self.program.save(program_path)
                self._guard(lambda: self.client.log_artifact(self.run_id, str(program_path)))

    def _end(self, status: str) -> None:
        self._guard(lambda: self.client.set_terminated(self.run_id, status=status))
        if self._context_token is not None:
            try:
                current_run.reset(self._context_token)
            except ValueError:  # ended from another context: leave it, it dies with it
                pass
            self._context_token = None
        _flush_traces()

    def _guard(self, action: Any) -> None:
        """Run a logging call; a failure mid-fit is warned about once, never raised."""
        try:
            action()
        except Exception as exc:
            if not self._warned:
                self._warned = True
                logger.warning("synaray: MLflow logging failed for run %s (%s); the fit goes "
                               "on, later failures are not reported.", self.run_id, exc)

    def get_config(self) -> dict:
        return {"tracking_uri": self.tracking_uri, "experiment_name": self.experiment_name,
                "run_name": self.run_name, "tags": self.tags,
                "log_best_program": self.log_best_program}

    def __repr__(self) -> str:
        return f"<MlflowLogger experiment={self.experiment_name} run_id={self.run_id}>"


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _cache_hits() -> int:
    from synaray.lm.usage import get_usage

    return sum(stats.cache_hits for stats in get_usage().values())


def _flush_traces() -> None:
    try:
        import mlflow

        flush = getattr(mlflow, "flush_trace_async_logging", None)
        if flush is not None:
            flush()
    except Exception as exc:  # tracing is best effort
        logger.debug("synaray: flushing MLflow traces failed: %s", exc)


def _check_reachable(uri: str) -> None:
    """Fail fast (instead of MLflow's minutes of retries) when an HTTP server is down."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
            pass
    except urllib.error.HTTPError:
        return  # it answered: a proxy or an auth layer in front of /health
    except (OSError, ValueError) as exc:
        raise ConfigError(f"The MLflow tracking server {uri} is not reachable ({exc}). Start "
                          "it (e.g. `mlflow server --host 127.0.0.1 --port 5000`) or pass "
                          "another tracking_uri to synaray.enable_observability().") from exc


# --- params ----------------------------------------------------------------------------------
def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= PARAM_MAX_CHARS else text[:PARAM_MAX_CHARS - 3] + "..."


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    """Serialized objects become their model name or class name; dicts are dotted."""
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        config = value.get("config") or {}
        out[prefix] = _short(config.get("model") if isinstance(config, dict)
                             and config.get("model") else value["class_name"])
    elif isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, dict):
        return
    else:
        out[prefix] = _short(value if value is not None else "None")


def model_names(program: Any) -> list[str]:
    """Names of the models a compiled program uses: its modules, reward and optimizer."""
    owners = [*program.modules, program.reward, program.optimizer]
    names = set()
    for owner in owners:
        for attribute in ("language_model", "embedding_model"):
            model = getattr(owner, attribute, None)
            name = getattr(model, "model", None)
            if isinstance(name, str):
                names.add(name)
    return sorted(names)


def fit_params(program: Any, info: dict[str, Any]) -> dict[str, str]:
    """The MLflow params of a fit: optimizer config, data and engine settings, models."""
    params: dict[str, str] = {}
    optimizer = program.optimizer
    params["optimizer"] = type(optimizer).__name__
    try:
        config = optimizer.get_config()
    except Exception:  # an optimizer without a config still gets its class logged
        config = {}
    for key, value in config.items():
        _flatten(f"optimizer.{key}", value, params)
    for key in ("batch_size", "epochs", "engine", "train_size", "val_size", "resume"):
        if key in info:
            params[key] = _short(info[key])
    for key, value in (info.get("engine_config") or {}).items():
        params[f"engine.{key}"] = _short(value)
    params["reward"] = getattr(program.reward, "name", None) or type(program.reward).__name__
    params["metrics"] = _short([getattr(m, "name", type(m).__name__) for m in program.metrics])
    params["models"] = _short(", ".join(model_names(program)) or "none")
    params["program"] = _short(program.name)
    return params
