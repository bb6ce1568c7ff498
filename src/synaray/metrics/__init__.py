"""Metrics: statistics monitored during training and evaluation, with exactly mergeable state.

`get(identifier)` turns what `program.compile(metrics=[...])` receives into a `Metric`.
"""

from __future__ import annotations

import inspect
from typing import Any

from synaray import rewards as _rewards
from synaray.errors import ConfigError
from synaray.metrics.accuracy_metrics import Accuracy, BinaryAccuracy
from synaray.metrics.f_score_metrics import F1Score, FBetaScore, TokenCountMetric
from synaray.metrics.metric import Metric
from synaray.metrics.metric_state import MetricState
from synaray.metrics.pass_at_k import PassAtK, pass_at_k
from synaray.metrics.precision_recall_metrics import Precision, Recall
from synaray.metrics.reduction_metrics import Mean, MeanMetricWrapper, Sum
from synaray.rewards.common import to_snake_case
from synaray.saving import deserialize_object, get_registered_object, serialize_object

__all__ = [
    "ALL_OBJECTS",
    "ALL_OBJECTS_DICT",
    "Accuracy",
    "BinaryAccuracy",
    "F1Score",
    "FBetaScore",
    "Mean",
    "MeanMetricWrapper",
    "Metric",
    "MetricState",
    "PassAtK",
    "Precision",
    "Recall",
    "Sum",
    "TokenCountMetric",
    "deserialize",
    "get",
    "pass_at_k",
    "serialize",
]

ALL_OBJECTS: tuple[type[Metric], ...] = (
    Accuracy,
    BinaryAccuracy,
    F1Score,
    FBetaScore,
    Mean,
    MeanMetricWrapper,
    PassAtK,
    Precision,
    Recall,
    Sum,
)

ALL_OBJECTS_DICT: dict[str, type[Metric]] = {
    **{cls.__name__: cls for cls in ALL_OBJECTS},
    **{to_snake_case(cls.__name__): cls for cls in ALL_OBJECTS},
    "fbeta_score": FBetaScore,
    "f1": F1Score,
    "acc": Accuracy,
}


def serialize(metric: Metric) -> dict[str, Any]:
    """The `{module, class_name, config, registered_name}` description of a metric."""
    return serialize_object(metric)


def deserialize(config: dict[str, Any],
                custom_objects: dict[str, Any] | None = None) -> Metric:
    """Rebuild a metric from `serialize`'s output (or a `{"class_name", "config"}` dict)."""
    objects = {**_rewards.ALL_OBJECTS_DICT, **ALL_OBJECTS_DICT, **(custom_objects or {})}
    if isinstance(config, dict) and not config.get("module"):
        config = {**config, "module": __name__}  # a bare {"class_name", "config"} dict
    return _as_metric(deserialize_object(config, objects), config)


def _as_metric(obj: Any, identifier: Any) -> Metric:
    if inspect.isclass(obj) and issubclass(obj, (Metric, _rewards.Reward)):
        try:
            obj = obj()
        except (TypeError, ConfigError) as exc:
            raise ConfigError(f"Could not build {obj.__name__} from identifier "
                              f"{identifier!r} without arguments: {exc} Pass an instance "
                              "instead.") from exc
    if isinstance(obj, Metric):
        return obj
    if isinstance(obj, _rewards.Reward) or (callable(obj) and not inspect.isclass(obj)):
        return MeanMetricWrapper(fn=obj)
    raise ConfigError(f"Could not interpret metric identifier: {identifier!r}. Expected None, "
                      f"a metric name (one of {sorted(ALL_OBJECTS_DICT)}) or reward name, a "
                      "config dict, a Metric class or instance, a Reward, or a function.")


def get(identifier: Any) -> Metric | None:
    """A `Metric` from an identifier, as `program.compile(metrics=[...])` accepts it.

    Args:
        identifier: None (returns None); a metric name ("f1_score", "F1Score", "accuracy",
            ...) or, failing that, a reward name ("exact_match", ...), which is wrapped in
            `MeanMetricWrapper`; a registered "package>name"; a config dict
            `{"class_name": ..., "config": ...}`; a `Metric` class (built without arguments)
            or instance (returned as is); or a `Reward` or function (wrapped in
            `MeanMetricWrapper`).

    Raises:
        ConfigError: "Could not interpret metric identifier ..." for anything else.

    Example:
        >>> get("f1_score")
        <F1Score name=f1_score>
        >>> get("exact_match")
        <MeanMetricWrapper name=exact_match>
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        obj = (ALL_OBJECTS_DICT.get(identifier) or _rewards.ALL_OBJECTS_DICT.get(identifier)
               or get_registered_object(identifier))
        if obj is None:
            raise ConfigError(f"Could not interpret metric identifier: {identifier!r}. Known "
                              f"names: {sorted(ALL_OBJECTS_DICT)}, reward names, or a "
                              "registered 'package>name'.")
        return _as_metric(obj, identifier)
    return _as_metric(identifier, identifier)
