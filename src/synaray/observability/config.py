"""`enable_observability`: the process-wide switch the trainer reads before each fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synaray.errors import ConfigError
from synaray.observability.mlflow_import import DEFAULT_EXPERIMENT, INSTALL_HINT, require_mlflow

__all__ = ["DEFAULT_EXPERIMENT", "INSTALL_HINT", "ObservabilityConfig", "disable_observability",
           "enable_observability", "fit_callbacks", "get_observability", "require_mlflow"]


@dataclass(frozen=True)
class ObservabilityConfig:
    """Where fits are tracked.

    Attributes:
        tracking_uri: the MLflow tracking URI ("http://host:5000", "sqlite:///mlflow.db",
            a folder...).
        experiment_name: the MLflow experiment every fit's run goes to.
        trace_lm_calls: record each `LanguageModel` call of this process as an MLflow span.

    Example:
        >>> ObservabilityConfig("http://127.0.0.1:5000", "demo").experiment_name
        'demo'
    """

    tracking_uri: str | None
    experiment_name: str = DEFAULT_EXPERIMENT
    trace_lm_calls: bool = True


_STATE: dict[str, Any] = {"config": None, "tracer": None}


def enable_observability(tracking_uri: str | None = None, experiment_name: str | None = None,
                         *, trace_lm_calls: bool = True) -> ObservabilityConfig:
    """Track every later `fit` of this process in MLflow, and trace LM calls as spans.

    Each fit becomes an MLflow run in `experiment_name` with the fit's parameters
    (optimizer config, batch size, epochs, engine, model names), per-generation reward,
    population reward and LM usage (calls, tokens, failures, cost; cache hits with
    LocalEngine), per-epoch validation reward and metrics, and the best program's JSON as
    an artifact. Nothing contacts the server until a fit starts.

    Args:
        tracking_uri: the MLflow tracking URI, e.g. "http://localhost:5000"; None keeps
            MLflow's current one (`MLFLOW_TRACKING_URI` or `./mlruns`).
        experiment_name: the experiment runs go to (created if missing; default "synaray").
        trace_lm_calls: also record each `LanguageModel` call made in this process as an
            MLflow span (inputs, outputs, tokens, cost), if this MLflow has tracing. Calls
            made inside Ray evaluator actors are not traced.

    Returns:
        The `ObservabilityConfig` now in force.

    Raises:
        MissingExtraError: MLflow is not installed (`pip install 'synaray[mlflow]'`).
        ConfigError: an argument of the wrong type.

    Example:
        >>> import synaray
        >>> synaray.enable_observability(tracking_uri="http://localhost:5000",
        ...                              experiment_name="my_experiment")  # doctest: +SKIP
    """
    if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri):
        raise ConfigError(f"Invalid value for argument `tracking_uri`. Received: "
                          f"{tracking_uri!r}. Expected an MLflow tracking URI string or None.")
    if experiment_name is not None and (not isinstance(experiment_name, str)
                                        or not experiment_name.strip()):
        raise ConfigError(f"Invalid value for argument `experiment_name`. Received: "
                          f"{experiment_name!r}. Expected a non-empty string or None.")
    mlflow = require_mlflow()
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    config = ObservabilityConfig(tracking_uri or mlflow.get_tracking_uri(),
                                 experiment_name or DEFAULT_EXPERIMENT, trace_lm_calls)
    _uninstall_tracer()
    _STATE["config"] = config
    if trace_lm_calls:
        from synaray.lm.hooks import add_call_observer
        from synaray.observability.lm_tracing import MlflowSpanObserver

        tracer = MlflowSpanObserver(config)
        if tracer.available:
            add_call_observer(tracer)
            _STATE["tracer"] = tracer
    return config


def disable_observability() -> None:
    """Stop tracking fits and tracing LM calls (runs already logged stay)."""
    _uninstall_tracer()
    _STATE["config"] = None


def _uninstall_tracer() -> None:
    tracer = _STATE.get("tracer")
    if tracer is not None:
        from synaray.lm.hooks import remove_call_observer

        remove_call_observer(tracer)
    _STATE["tracer"] = None


def get_observability() -> ObservabilityConfig | None:
    """The config set by `enable_observability`, or None when observability is off."""
    return _STATE["config"]


def span_tracer() -> Any:
    """The LM span observer in force (None when LM calls are not traced)."""
    return _STATE["tracer"]


def fit_callbacks(callbacks: list[Any]) -> list[Any]:
    """Callbacks the trainer adds to a fit: an `MlflowLogger` when observability is on.

    None is added when the user already passed an `MlflowLogger`.
    """
    config = _STATE["config"]
    if config is None:
        return []
    from synaray.observability.mlflow_logger import MlflowLogger

    if any(isinstance(c, MlflowLogger) for c in callbacks):
        return []
    return [MlflowLogger(tracking_uri=config.tracking_uri,
                         experiment_name=config.experiment_name)]
