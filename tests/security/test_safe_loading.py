"""Safe loading: a file from someone else runs no code unless the user opts in.

Each crafted file names code that would create a marker file if it ran (an `os.system` or
`subprocess.run` call, or a module whose import writes the marker). The tests check that
the load is refused, that the message names the object and the file, and that the marker
does not exist; then that the same file loads once trusted (`safe_mode=False`,
`custom_objects`, a registered object).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

import synaray
from synaray import saving
from synaray.errors import ConfigError
from synaray.programs.serialization import without_unsafe_data_models
from synaray.saving import (
    SafeModeWarning,
    deserialize_object,
    register_synaray_serializable,
    safe_mode_scope,
)
from synaray.testing import FakeLanguageModel


class Query(synaray.DataModel):
    query: str


class Answer(synaray.DataModel):
    answer: str


@register_synaray_serializable(package="tests_security")
def answer_handler(messages, schema):
    return {"answer": "yes"}


def trusted_score(y_true, y_pred) -> float:
    """A reward function of the user's own (not registered)."""
    return 0.25


@register_synaray_serializable(package="tests_security")
def registered_score(y_true, y_pred) -> float:
    return 0.5


async def _saved_program(folder: Path, reward: Any = "exact_match") -> Path:
    inputs = synaray.Input(data_model=Query)
    outputs = await synaray.Generator(data_model=Answer,
                                      language_model=FakeLanguageModel(answer_handler))(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="qa")
    program.compile(reward=reward, optimizer="random_few_shot")
    path = folder / "program.json"
    program.save(path)
    return path


def _edit(path: Path, change) -> Path:
    payload = json.loads(path.read_text())
    change(payload)
    path.write_text(json.dumps(payload))
    return path


def _generator(payload: dict) -> dict:
    return payload["config"]["modules"][0]["config"]


def _evil_module(folder: Path, marker: Path) -> str:
    """A module on sys.path whose import writes `marker`; returns its (unique) name."""
    name = f"evil_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "def score(y_true, y_pred):\n    return 1.0\n"
        "class Q:\n    pass\n")
    return name


@pytest.fixture
def evil_path(tmp_path, monkeypatch):
    folder = tmp_path / "evil_site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


# --- program files ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [
    {"module": "os", "class_name": "system", "config": {"command": "touch {marker}"}},
    {"module": "subprocess", "class_name": "run", "config": {"args": ["touch", "{marker}"]}},
])
async def test_language_model_naming_a_shell_command_is_refused(tmp_path, model) -> None:
    marker = tmp_path / "MARKER"
    crafted = json.loads(json.dumps(model).replace("{marker}", str(marker)))
    path = _edit(await _saved_program(tmp_path),
                 lambda p: _generator(p).update(language_model=crafted))
    with pytest.raises(ConfigError) as info:
        synaray.Program.load(path)
    message = str(info.value)
    assert f"{model['module']}:{model['class_name']}" in message
    assert str(path) in message
    assert "safe_mode=False" in message and "--trust-code" in message
    assert "custom_objects" in message
    assert not marker.exists()


async def test_a_synaray_module_re_exporting_os_system_is_refused(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "MARKER"
    monkeypatch.setattr(saving, "system", os.system, raising=False)
    crafted = {"module": "synaray.saving", "class_name": "system",
               "config": {"command": f"touch {marker}"}}
    path = _edit(await _saved_program(tmp_path),
                 lambda p: _generator(p).update(language_model=crafted))
    with pytest.raises(ConfigError, match=r"'synaray.saving:system'.*not a synaray"):
        synaray.Program.load(path)
    assert not marker.exists()


async def test_crafted_reward_reference_is_refused_before_import(tmp_path, evil_path) -> None:
    marker = tmp_path / "MARKER"
    module = _evil_module(evil_path, marker)
    fn = {"module": module, "class_name": "function", "config": "score",
          "registered_name": None}
    path = _edit(await _saved_program(tmp_path, reward=trusted_score),
                 lambda p: p["compile_config"]["reward"]["config"].update(fn=fn))
    with pytest.raises(ConfigError) as info:
        synaray.Program.load(path)
    assert f"'{module}:score'" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists() and module not in sys.modules
    # the same file, trusted: its module is imported and its function used
    program = synaray.Program.load(path, safe_mode=False)
    assert marker.exists() and program.reward.fn is sys.modules[module].score


async def test_user_reward_loads_through_custom_objects_or_registration(tmp_path) -> None:
    path = await _saved_program(tmp_path, reward=trusted_score)
    with pytest.raises(ConfigError, match="trusted_score"):
        synaray.Program.load(path)
    loaded = synaray.Program.load(path, custom_objects={"trusted_score": trusted_score})
    assert loaded.reward.fn is trusted_score
    folder = tmp_path / "registered"
    folder.mkdir()
    path = await _saved_program(folder, reward=registered_score)
    assert synaray.Program.load(path).reward.fn is registered_score


async def test_registered_name_with_another_module_is_refused(tmp_path) -> None:
    """A file cannot borrow a registered name to make an actor import another module."""
    marker = tmp_path / "MARKER"
    crafted = {"module": "os", "class_name": "function", "config": "system",
               "registered_name": "tests_security>answer_handler"}
    path = _edit(await _saved_program(tmp_path),
                 lambda p: _generator(p)["language_model"]["config"].update(handler=crafted))
    with pytest.raises(ConfigError, match=r"registered from module .* names module 'os'"):
        synaray.Program.load(path)
    assert not marker.exists()


async def test_crafted_data_model_reference_is_not_imported(tmp_path, evil_path) -> None:
    marker = tmp_path / "MARKER"
    module = _evil_module(evil_path, marker)

    def change(payload: dict) -> None:
        payload["config"]["inputs"][0]["data_model"] = f"{module}:Q"
        _generator(payload)["data_model"] = f"{module}:Q"

    path = _edit(await _saved_program(tmp_path), change)
    with pytest.warns(SafeModeWarning) as caught:
        program = synaray.Program.load(path)
    message = str(caught[0].message)
    assert f"'{module}:Q'" in message and str(path) in message and "--trust-code" in message
    assert not marker.exists() and module not in sys.modules
    assert program.input_schemas == [Query.get_schema()]  # the saved schema is used
    # what a Ray actor would rebuild keeps no reference to the module
    stripped = without_unsafe_data_models(json.loads(path.read_text()))
    assert stripped["config"]["inputs"][0]["data_model"] is None
    assert _generator(stripped)["data_model"] is None


async def test_own_data_models_and_models_still_load(tmp_path) -> None:
    path = await _saved_program(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SafeModeWarning)
        program = synaray.Program.load(path)  # this test module is imported: no warning
    assert program.get_module("generator").data_model is Answer
    assert program.reward.name == "exact_match"
    out = await program(Query(query="q"))
    assert out.get_json() == {"answer": "yes"}


def test_deserialize_object_in_a_safe_scope_reaches_nested_objects(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    nested = {"module": "synaray.rewards", "class_name": "RewardFunctionWrapper",
              "config": {"fn": {"module": "os", "class_name": "function", "config": "system"}}}
    with safe_mode_scope(True, source="crafted.json"), \
            pytest.raises(ConfigError, match=r"crafted.json: refusing to import 'os:system'"):
        deserialize_object(nested)
    assert deserialize_object(nested, safe_mode=False).fn is os.system  # trusted: resolved
    assert not marker.exists()


def test_pickled_programs_rebuild_trusted_inside_a_safe_scope() -> None:
    """Ray ships programs by pickle: unpickling is not loading a file."""
    import asyncio
    import pickle

    async def build() -> Any:
        inputs = synaray.Input(data_model=Query)
        outputs = await synaray.Generator(
            data_model=Answer, language_model=FakeLanguageModel(answer_handler))(inputs)
        program = synaray.Program(inputs=inputs, outputs=outputs, name="qa")
        program.compile(reward=trusted_score, optimizer="random_few_shot")
        return program

    program = asyncio.run(build())
    with safe_mode_scope(True):
        copy = pickle.loads(pickle.dumps(program))
    assert copy.reward.fn is trusted_score


# --- the command line -----------------------------------------------------------------------------
async def test_evaluate_refuses_a_crafted_program_and_writes_nothing(tmp_path, capsys) -> None:
    from synaray.cli.main import main

    marker = tmp_path / "MARKER"
    crafted = {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}}
    path = _edit(await _saved_program(tmp_path),
                 lambda p: _generator(p).update(language_model=crafted))
    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps({"id": "a", "query": "q", "answer": "yes"}) + "\n")
    out = tmp_path / "results"
    assert main(["evaluate", "--program", str(path), "--data", str(data), "--out", str(out),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "'os:system'" in err and str(path) in err and "--trust-code" in err
    assert not marker.exists() and not out.exists()


async def test_fit_with_a_crafted_program_path_needs_trust_code(tmp_path, evil_path) -> None:
    from synaray.config import parse_run_config
    from synaray.config.program_building import build_program

    marker = tmp_path / "MARKER"
    module = _evil_module(evil_path, marker)
    fn = {"module": module, "class_name": "function", "config": "score",
          "registered_name": None}
    path = _edit(await _saved_program(tmp_path, reward=trusted_score),
                 lambda p: p["compile_config"]["reward"]["config"].update(fn=fn))
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"id": "a", "query": "q", "answer": "yes"}) + "\n")
    config = parse_run_config(
        {"program": {"path": str(path)},
         "data": {"train": str(data), "input_model": f"{__name__}:Query",
                  "output_model": f"{__name__}:Answer"},
         "reward": "exact_match", "optimizer": "random_few_shot"}, "run.yaml")
    with pytest.raises(ConfigError, match=rf"{path}: refusing to import '{module}:score'"):
        await build_program(config)
    assert not marker.exists()
    with safe_mode_scope(False):  # what `synaray fit --trust-code` opens
        program = await build_program(config)
    assert marker.exists() and program.name == "qa"


async def test_payload_hash_ignores_the_data_model_references_safe_mode_drops(tmp_path) -> None:
    from synaray.engines.bulk_io import payload_hash

    payload = json.loads((await _saved_program(tmp_path)).read_text())
    dropped = json.loads(json.dumps(payload))
    dropped["config"]["inputs"][0]["data_model"] = None
    assert payload_hash(dropped) == payload_hash(payload)
    changed = json.loads(json.dumps(payload))
    _generator(changed)["instructions"] = "Other."
    assert payload_hash(changed) != payload_hash(payload)


async def test_enable_unsafe_deserialization_trusts_every_load(tmp_path, monkeypatch) -> None:
    path = await _saved_program(tmp_path, reward=trusted_score)
    monkeypatch.setattr(saving, "_UNSAFE_EVERYWHERE", False)
    with pytest.raises(ConfigError, match="trusted_score"):
        synaray.Program.load(path)
    saving.enable_unsafe_deserialization()
    assert synaray.Program.load(path).reward.fn is trusted_score
    with pytest.raises(ConfigError, match="trusted_score"):  # an explicit choice still wins
        synaray.Program.load(path, safe_mode=True)
