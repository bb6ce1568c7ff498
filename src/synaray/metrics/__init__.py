"""Metrics: statistics monitored during training and evaluation, with exactly mergeable state.

`get(identifier)` turns what `program.compile(metrics=[...])` receives into a `Metric`.
"""

from __future__ import annotations

from typing import Any

from synaray import rewards as _rewards
from synaray.component_registry import ComponentRegistry
from synaray.metrics.accuracy_metrics import Accuracy, BinaryAccuracy
from synaray.metrics.f_score_metrics import F1Score, FBetaScore, TokenCountMetric
from synaray.metrics.metric import Metric
from synaray.metrics.metric_state import MetricState
from synaray.metrics.pass_at_k import PassAtK, pass_at_k
from synaray.metrics.precision_recall_metrics import Precision, Recall
from synaray.metrics.reduction_metrics import Mean, MeanMetricWrapper, Sum

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

# A reward (by name, class, instance) or a plain function is averaged by `MeanMetricWrapper`.
REGISTRY = ComponentRegistry(
    "metric", Metric, ALL_OBJECTS, module=__name__,
    aliases={"fbeta_score": FBetaScore, "f1": F1Score, "acc": Accuracy},
    fallback=_rewards.ALL_OBJECTS_DICT, fallback_kind="reward",
    buildable=(Metric, _rewards.Reward),
    wrap=lambda fn: MeanMetricWrapper(fn=fn),
    expected="a Metric class or instance, a Reward, or a function")
ALL_OBJECTS_DICT: dict[str, type[Metric]] = REGISTRY.names


#: `serialize(component)` / `deserialize(config, custom_objects=None)`: see ComponentRegistry.
serialize = REGISTRY.serialize
deserialize = REGISTRY.deserialize


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
    return REGISTRY.get(identifier)
