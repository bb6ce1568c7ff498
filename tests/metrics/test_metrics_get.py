"""metrics.get identifiers, and the config round trip of every metric class."""

from __future__ import annotations

import pickle

import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip

from synaray import metrics
from synaray.errors import ConfigError
from synaray.metrics import (
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
from synaray.rewards import ExactMatch, TokenF1
from synaray.saving import register_synaray_serializable

MASKS = {"in_mask": ["answer"], "out_mask": ["thinking"], "in_mask_pattern": "^lab",
         "out_mask_pattern": None}


@register_synaray_serializable(package="synaray_tests")
def answer_present(y_true, y_pred):
    return float("answer" in y_pred)


EXAMPLES = {
    Accuracy: lambda: Accuracy(name="acc", **MASKS),
    BinaryAccuracy: lambda: BinaryAccuracy(threshold=0.3, **MASKS),
    F1Score: lambda: F1Score(average="macro", **MASKS),
    FBetaScore: lambda: FBetaScore(average="weighted", beta=0.5, **MASKS),
    Mean: lambda: Mean(name="avg"),
    MeanMetricWrapper: lambda: MeanMetricWrapper(answer_present, **MASKS),
    PassAtK: lambda: PassAtK(k=3, reward=TokenF1(), threshold=0.5, **MASKS),
    Precision: lambda: Precision(average="micro", **MASKS),
    Recall: lambda: Recall(**MASKS),
    Sum: lambda: Sum(),
}


def test_every_metric_class_has_a_round_trip_example():
    assert set(EXAMPLES) == set(metrics.ALL_OBJECTS)


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_config_round_trip(cls):
    metric = EXAMPLES[cls]()
    rebuilt = assert_config_round_trip(metric)
    assert rebuilt.get_state() == metric.get_state()
    assert repr(rebuilt) == repr(metric)
    assert rebuilt.direction == metric.direction == "up"


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
async def test_pickles_with_its_state_for_ray_workers(cls):
    metric = EXAMPLES[cls]()
    if isinstance(metric, (Mean, Sum)):
        await metric.update_state([0.1, 0.7])
    elif isinstance(metric, PassAtK):
        await metric.update_state({"answer": "a"}, [{"answer": "a"}] * 3)
    else:
        await metric.update_state({"answer": "a b", "label": 1}, {"answer": "a", "label": 0.9})
    again = pickle.loads(pickle.dumps(metric))
    assert type(again) is cls and again.get_config() == metric.get_config()
    assert again.get_state() == metric.get_state() and again.result() == metric.result()


@pytest.mark.parametrize(("identifier", "cls"), [
    ("f1_score", F1Score),
    ("F1Score", F1Score),
    ("fbeta_score", FBetaScore),
    ("precision", Precision),
    ("recall", Recall),
    ("accuracy", Accuracy),
    ("binary_accuracy", BinaryAccuracy),
    ("pass_at_k", PassAtK),
    ("exact_match", MeanMetricWrapper),
    ("token_f1", MeanMetricWrapper),
    (F1Score, F1Score),
    (ExactMatch(), MeanMetricWrapper),
    (ExactMatch, MeanMetricWrapper),
    (answer_present, MeanMetricWrapper),
    ("synaray_tests>answer_present", MeanMetricWrapper),
    ({"class_name": "F1Score", "config": {"in_mask": ["answer"]}}, F1Score),
])
def test_get_resolves_identifiers(identifier, cls):
    assert type(metrics.get(identifier)) is cls


def test_get_none_instances_and_serialized():
    assert metrics.get(None) is None
    metric = Recall(average="micro")
    assert metrics.get(metric) is metric
    again = metrics.get(metrics.serialize(metric))
    assert isinstance(again, Recall) and again.average == "micro"
    assert metrics.deserialize(metrics.serialize(metric)).get_config() == metric.get_config()


@pytest.mark.parametrize("identifier", ["no_such_metric", 1.5,
                                        {"class_name": "NoSuchMetric", "config": {}}])
def test_get_refuses_unknown_identifiers(identifier):
    with pytest.raises(ConfigError, match=r"metric identifier|Cannot find"):
        metrics.get(identifier)


def test_get_by_name_of_a_metric_that_needs_arguments_explains():
    with pytest.raises(ConfigError, match=r"MeanMetricWrapper.*Pass an instance"):
        metrics.get("mean_metric_wrapper")


def test_public_names():
    assert sorted(metrics.__all__) == metrics.__all__
    for name in metrics.__all__:
        assert hasattr(metrics, name)
