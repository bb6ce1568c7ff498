"""What every optimizer promises: determinism, exact resume, config round trip, no Ray."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys

import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip

from synaray import optimizers
from synaray.optimizers import OMEGA, PopulationSearch, RandomFewShot
from synaray.saving import serialize_object
from synaray.testing import FakeLanguageModel

from .driver import FakeEmbeddingModel, canonical, drive, echo_writer, setup

MODULES = ["random_few_shot", "omega", "population_search", "strategies.selectors",
           "strategies.demos", "strategies.pareto", "strategies.mutations",
           "strategies.reflection", "strategies.novelty", "strategies.knobs"]


def random_few_shot(seed=0):
    return RandomFewShot(population_size=4, seed=seed)


def omega(seed=0):
    return OMEGA(language_model=FakeLanguageModel(echo_writer),
                 embedding_model=FakeEmbeddingModel(), population_size=3, nb_offspring=2,
                 crossover_probability=0.5, seed=seed)


def population_search(seed=0):
    return PopulationSearch(language_model=FakeLanguageModel(echo_writer), population_size=4,
                            crossover_probability=0.2, seed=seed)


def population_search_preset(seed=0):
    """The budget preset with every sample-efficiency option on (proposals included)."""
    return PopulationSearch(language_model=FakeLanguageModel(echo_writer), lm_calls=400,
                            seed=seed)


FACTORIES = [random_few_shot, omega, population_search]
SEARCHES = [*FACTORIES, population_search_preset]


async def run(factory, seed=0, max_rounds=None):
    optimizer = factory(seed)
    engine = setup(optimizer, epochs=2)
    await drive(optimizer, engine, max_rounds=max_rounds)
    return optimizer, engine


@pytest.mark.parametrize("factory", SEARCHES)
async def test_same_seed_same_search(factory):
    first, _ = await run(factory)
    second, _ = await run(factory)
    assert first.history == second.history
    assert first.best().state == second.best().state
    assert canonical(first.state_dict()) == canonical(second.state_dict())
    assert len(first.candidates) > 1


@pytest.mark.parametrize("factory", SEARCHES)
async def test_a_different_seed_gives_a_different_search(factory):
    first, _ = await run(factory, seed=0)
    other, _ = await run(factory, seed=1)
    assert canonical(first.state_dict()) != canonical(other.state_dict())


@pytest.mark.parametrize("factory", SEARCHES)
@pytest.mark.parametrize("stop_after", [2, 5, 7])
async def test_resume_from_json_state_continues_identically(factory, stop_after):
    whole, _ = await run(factory)
    part, engine = await run(factory, max_rounds=stop_after)
    assert not part.finished
    saved = json.loads(json.dumps(part.state_dict()))
    resumed = factory(0)
    resumed.load_state_dict(saved, engine.datasets["train"], engine.datasets["val"])
    await drive(resumed, engine)  # the same engine: it fails on any pair scored twice
    assert canonical(resumed.state_dict()) == canonical(whole.state_dict())
    assert resumed.best().state == whole.best().state


@pytest.mark.parametrize("factory", SEARCHES)
def test_config_round_trip(factory):
    optimizer = factory(3)
    rebuilt = assert_config_round_trip(optimizer)
    assert rebuilt.get_config()["seed"] == 3


@pytest.mark.parametrize(("name", "cls"), [("random_few_shot", RandomFewShot),
                                           ("omega", OMEGA), ("OMEGA", OMEGA),
                                           ("population_search", PopulationSearch),
                                           ("PopulationSearch", PopulationSearch)])
def test_get_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


@pytest.mark.parametrize("factory", SEARCHES)
def test_get_from_a_serialized_config(factory):
    optimizer = factory(2)
    restored = optimizers.get(json.loads(json.dumps(serialize_object(optimizer))))
    assert type(restored) is type(optimizer)
    assert restored.get_config() == optimizer.get_config()


@pytest.mark.parametrize("factory", FACTORIES)
async def test_repr_is_keras_like(factory):
    optimizer = factory(0)
    name = type(optimizer).__name__
    assert repr(optimizer) == f"<{name} population={optimizer.population_size}>"
    await drive(optimizer, setup(optimizer), max_rounds=1)
    assert repr(optimizer).startswith(f"<{name} epoch=0/2 generation=1 population=")


@pytest.mark.parametrize("module", ["random_few_shot", "omega", "population_search"])
def test_importing_an_optimizer_does_not_import_ray(module):
    code = (f"import sys, synaray.optimizers.{module}\n"
            "print('ray' in sys.modules, 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"synaray.optimizers.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_shared_knob_text_is_substituted_in_every_docstring():
    for cls in (RandomFewShot, OMEGA, PopulationSearch):
        assert "{{" not in cls.__doc__
        assert "sampling_temperature: softmax temperature" in cls.__doc__
        assert "val_top_k:" in cls.__doc__
