"""The `sweep:` section: parsing, trial expansion, errors naming the key (no Ray)."""

import pytest

from synaray.errors import ConfigError
from synaray.sweeps import SweepSpec, expand_trials, parse_sweep_spec


def test_grid_is_the_cartesian_product_first_key_slowest():
    spec = parse_sweep_spec({"method": "grid", "parameters": {
        "model.temperature": {"values": [0.0, 0.5, 1.0]},
        "optimizer.population_size": {"grid": [2, 4]},
        "model.model": {"values": ["a", "b"]}}})
    trials = expand_trials(spec)
    assert len(trials) == 12
    assert trials[0] == {"model.temperature": 0.0, "optimizer.population_size": 2,
                         "model.model": "a"}
    assert trials[1]["model.model"] == "b"
    assert trials[-1] == {"model.temperature": 1.0, "optimizer.population_size": 4,
                          "model.model": "b"}
    assert len({tuple(t.values()) for t in trials}) == 12


def test_grid_is_the_default_method():
    spec = parse_sweep_spec({"parameters": {"training.seed": {"values": [0, 1]}}})
    assert spec.method == "grid" and spec.metric == "val_reward" and spec.mode == "max"
    assert expand_trials(spec) == [{"training.seed": 0}, {"training.seed": 1}]


def _random(seed, num_samples=5):
    return parse_sweep_spec({"method": "random", "num_samples": num_samples, "seed": seed,
                             "parameters": {
                                 "model.temperature": {"uniform": [0.0, 1.0]},
                                 "optimizer.population_size": {"choice": [2, 3, 4]},
                                 "model.model": {"values": ["a", "b"]}}})


def test_random_sampling_is_reproducible_with_the_seed():
    first, again, other = (expand_trials(_random(7)), expand_trials(_random(7)),
                           expand_trials(_random(8)))
    assert len(first) == 5
    assert first == again
    assert first != other
    for trial in first:
        assert 0.0 <= trial["model.temperature"] <= 1.0
        assert trial["optimizer.population_size"] in (2, 3, 4)
        assert trial["model.model"] in ("a", "b")  # `values` are drawn in a random sweep


def test_random_sweep_crosses_grid_axes_with_num_samples_each():
    spec = parse_sweep_spec({"method": "random", "num_samples": 3, "parameters": {
        "model.model": {"grid": ["a", "b"]},
        "model.temperature": {"uniform": [0.0, 2.0]}}})
    trials = expand_trials(spec)
    assert [t["model.model"] for t in trials] == ["a", "a", "a", "b", "b", "b"]
    assert len({t["model.temperature"] for t in trials}) == 6


@pytest.mark.parametrize("section, names", [
    ({"parameters": {"a.b": {"values": [1]}}, "methd": "grid"}, "sweep.methd: unknown field"),
    ({"method": "bayes", "parameters": {"a": {"values": [1]}}}, "sweep.method"),
    ({"parameters": {"a.b": {"valuez": [1, 2]}}}, "sweep.parameters['a.b'].valuez"),
    ({"parameters": {"a.b": [1, 2]}}, "sweep.parameters['a.b']: expected a mapping"),
    ({"parameters": {"a.b": {"values": []}}}, "sweep.parameters['a.b'].values"),
    ({"parameters": {"a.b": {"values": [1], "grid": [2]}}},
     "sweep.parameters['a.b']: expected exactly one"),
    ({"method": "random", "num_samples": 2, "parameters": {"t": {"uniform": [1.0, 0.5]}}},
     "sweep.parameters['t']: uniform needs [lo, hi] with lo < hi"),
    ({"parameters": {"t": {"uniform": [0.0, 1.0]}}},
     "sweep.parameters['t']: uniform draws at random"),
    ({"parameters": {"t": {"choice": [1, 2]}}}, "sweep.parameters['t']: choice draws"),
    ({"method": "random", "parameters": {"t": {"choice": [1, 2]}}}, "sweep.num_samples"),
    ({"num_samples": 3, "parameters": {"t": {"values": [1, 2]}}}, "sweep.num_samples"),
    ({"parameters": {"a..b": {"values": [1]}}}, "sweep.parameters['a..b']"),
    ({"parameters": {"sweep.method": {"values": [1]}}}, "sweep.parameters['sweep.method']"),
    ({"parameters": {}}, "sweep.parameters"),
    ({"metric": "f1", "parameters": {"t": {"values": [1]}}}, "sweep.metric"),
    ({"mode": "maximum", "parameters": {"t": {"values": [1]}}}, "sweep.mode"),
    ({"cpus_per_trial": 0, "parameters": {"t": {"values": [1]}}}, "sweep.cpus_per_trial"),
    ("grid", "The `sweep` section must be a mapping"),
])
def test_bad_fields_name_the_key(section, names):
    with pytest.raises(ConfigError) as info:
        parse_sweep_spec(section)
    message = str(info.value)
    assert names in message
    assert "\n" not in message  # the CLI shows the first line of an error


def test_spec_is_frozen_and_accepts_itself():
    spec = SweepSpec.model_validate({"parameters": {"t": {"values": [1]}}})
    assert parse_sweep_spec(spec) is spec
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        spec.method = "random"


@pytest.mark.parametrize("name", ["synaray.sweeps.spec", "synaray.sweeps.results",
                                  "synaray.sweeps.tune_reporter", "synaray.sweeps.runner"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
