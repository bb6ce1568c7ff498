"""LM calls as MLflow spans: an observer registered with `synaray.lm.hooks`.

Each `LanguageModel` call of this process becomes a span of type LLM named
`LanguageModel <model>`: inputs are the messages, outputs the answer (JSON or text) or the
error, attributes the model, tokens, cost, latency, attempts and whether the answer came
from the cache. During a fit logged by `MlflowLogger`, spans are attached to the fit's run
(a context variable carries its id into the evaluation tasks); otherwise they go to the
configured experiment. If this MLflow has no tracing API, nothing is installed.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from typing import Any

from synaray.lm.hooks import ObservedCall

__all__ = ["MlflowSpanObserver", "current_run"]

logger = logging.getLogger(__name__)

# (run id, experiment id) of the fit being logged, seen by the evaluation tasks it starts.
current_run: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "synaray_mlflow_run", default=None)


def _experiment_location() -> Any:
    """The class naming an experiment as a trace destination, in this MLflow (or None)."""
    try:
        from mlflow.entities.trace_location import MlflowExperimentLocation

        return MlflowExperimentLocation
    except ImportError:
        try:
            from mlflow.tracing.destination import MlflowExperiment

            return MlflowExperiment
        except ImportError:
            return None


class MlflowSpanObserver:
    """Opens an MLflow span around each model call (see the module docstring).

    Args:
        config: the `ObservabilityConfig` (its experiment receives spans made outside a fit).

    Example:
        >>> from synaray.observability import ObservabilityConfig
        >>> MlflowSpanObserver(ObservabilityConfig(None, "demo")).available  # doctest: +SKIP
        True
    """

    def __init__(self, config: Any) -> None:
        import mlflow

        self.config = config
        self._mlflow = mlflow
        self.available = callable(getattr(mlflow, "start_span", None))
        params = inspect.signature(mlflow.start_span).parameters if self.available else {}
        self._takes_run_id = "run_id" in params
        self._location = _experiment_location() if "trace_destination" in params else None
        self._experiment_set = False

    def _span_kwargs(self) -> dict[str, Any]:
        run = current_run.get()
        kwargs: dict[str, Any] = {}
        if run is not None and self._takes_run_id:
            kwargs["run_id"] = run[0]
        if run is not None and self._location is not None:
            kwargs["trace_destination"] = self._location(experiment_id=run[1])
        elif not self._experiment_set:  # spans go to the active experiment: make it ours
            self._experiment_set = True
            self._mlflow.set_experiment(self.config.experiment_name)
        return kwargs

    def start(self, call: ObservedCall) -> Any:
        manager = self._mlflow.start_span(name=f"LanguageModel {call.model}", span_type="LLM",
                                          **self._span_kwargs())
        span = manager.__enter__()
        try:
            span.set_inputs({"messages": call.messages})
            span.set_attributes({"model": call.model, "output_schema": call.schema_title or ""})
        except Exception:
            manager.__exit__(None, None, None)
            raise
        return manager, span

    def end(self, call: ObservedCall, token: Any) -> None:
        manager, span = token
        result = call.result
        try:
            if result is not None:
                span.set_outputs({"ok": result.ok, "json": result.json,
                                  "text": None if result.json is not None else result.text,
                                  "error": result.error})
                span.set_attributes({
                    "cached": result.cached, "attempts": result.attempts,
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens, "cost": result.cost,
                    "latency_s": result.latency_s, "error_type": result.error_type or ""})
                if not result.ok:
                    span.set_status("ERROR")
        finally:
            error = call.error
            manager.__exit__(type(error) if error else None, error, None)

    def __repr__(self) -> str:
        return f"<MlflowSpanObserver experiment={self.config.experiment_name}>"
