"""Run configs: loading YAML/TOML, overrides, and one clear error per kind of mistake.

Each bad-config test checks that the message names the file, the dotted key and what was
expected (and, where there is one, the closest allowed name).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from helpers.fit_programs import thirds_config
from synaray.config import load_run_config, parse_override
from synaray.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [REPO / "examples" / name for name in (
    "sports_population_search.yaml", "object_counting_random_few_shot.toml",
    "qa_custom_program.yaml")]

TASK = {"task": "sports_understanding", "model": "local/smollm2-135m",
        "optimizer": {"name": "population_search", "population_size": 3}}


def write_yaml(folder: Path, data: dict, name: str = "run.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def error_of(path: Path, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_run_config(path, overrides)
    message = str(info.value)
    assert message.startswith(str(path)), message  # the file comes first
    assert "\n" not in message  # the CLI prints the first line only
    return message


def with_(base: dict, **changes: object) -> dict:
    data = copy.deepcopy(base)
    data.update(changes)
    return data


# --- good configs ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # examples name files and modules from the repository root
    config = load_run_config(path.relative_to(REPO))
    assert config.source == str(path.relative_to(REPO))


def test_the_sports_example_is_small_population_search_on_ray() -> None:
    config = load_run_config(REPO / "examples" / "sports_population_search.yaml")
    assert config.task.name == "sports_understanding"
    assert (config.task.n_train, config.task.n_val) == (30, 30)
    assert config.optimizer.name == "population_search"
    assert config.optimizer.settings["population_size"] == 3
    assert config.training.epochs == 1
    assert (config.engine.type, config.engine.num_evaluators) == ("ray", 2)
    assert config.model.model == "local/smollm2-135m"


def test_toml_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('task = "sports_understanding"\nmodel = "local/smollm2-135m"\n'
                    '[optimizer]\nname = "population_search"\npopulation_size = 3\n')
    assert load_run_config(toml).model_dump() == \
        load_run_config(write_yaml(tmp_path, TASK)).model_dump()


def test_overrides_apply_before_validation_and_expand_shorthands(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, with_(TASK, optimizer="random_few_shot"))
    config = load_run_config(path, {"optimizer.population_size": 5, "task.n_train": 7,
                                    "engine.type": "ray", "model.temperature": 0.5})
    assert config.optimizer.name == "random_few_shot"
    assert config.optimizer.settings == {"population_size": 5}
    assert (config.task.name, config.task.n_train) == ("sports_understanding", 7)
    assert config.engine.type == "ray"
    assert (config.model.model, config.model.temperature) == ("local/smollm2-135m", 0.5)


def test_command_line_override_values_are_read_as_yaml() -> None:
    assert parse_override("training.epochs=3") == ("training.epochs", 3)
    assert parse_override("engine.address=auto") == ("engine.address", "auto")
    assert parse_override("model.cache=false") == ("model.cache", False)
    assert parse_override("metrics=[accuracy, f1_score]") == ("metrics",
                                                             ["accuracy", "f1_score"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("training.epochs")


def test_custom_program_config_with_data_files(tmp_path: Path) -> None:
    config = load_run_config(write_yaml(tmp_path, thirds_config(tmp_path)))
    assert config.program.builder == "helpers.fit_programs:build_thirds"
    assert config.data.input_model == "helpers.fit_programs:Number"


# --- bad configs: shapes and types (pydantic) -------------------------------------------------
def test_unknown_top_level_key_lists_the_allowed_keys(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, trainig={"epochs": 2})))
    assert "trainig: unknown key 'trainig'" in message
    assert "allowed keys: run_name, storage, task, program, data" in message
    assert "Did you mean 'training'?" in message


def test_unknown_nested_key_suggests_the_closest(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, training={"batchsize": 8})))
    assert "training.batchsize: unknown key 'batchsize' in training" in message
    assert "allowed keys: epochs, batch_size, seed, validation_split" in message
    assert "Did you mean 'batch_size'?" in message


def test_wrong_type_names_the_expected_type_and_the_value(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, training={"epochs": "two"})))
    assert "training.epochs: expected an integer; received 'two' (string)" in message


def test_negative_batch_size(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, training={"batch_size": -4})))
    assert "training.batch_size: expected a value >= 1; received -4 (integer)" in message


def test_bad_engine_type_lists_the_choices(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, engine={"type": "dask"})))
    assert "engine.type: expected one of 'local' or 'ray'; received 'dask'" in message


def test_an_override_is_checked_like_the_file(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, TASK), {"engine.num_evaluators": 0})
    assert "engine.num_evaluators (set by an override): expected a value >= 1" in message


def test_bad_module_function_string(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["program"] = {"builder": "helpers.fit_programs.build_thirds"}  # a dot, not a colon
    message = error_of(write_yaml(tmp_path, data))
    assert "program.builder: expected a 'package.module:function' string" in message
    assert "received 'helpers.fit_programs.build_thirds'" in message


def test_task_and_program_together_are_refused(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["task"] = "sports_understanding"
    message = error_of(write_yaml(tmp_path, data))
    assert "expected either `task`" in message and "`program` with `data`" in message


def test_metrics_entry_of_the_wrong_type(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, metrics=["accuracy", 3])))
    assert "metrics[1]: expected a mapping" in message and "received 3 (integer)" in message


# --- bad configs: names, settings, files, imports (checks) ------------------------------------
def test_unknown_reward_id(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, reward="exact_macth")))
    assert "reward.name: unknown reward 'exact_macth'" in message
    assert "expected one of" in message and "token_f1" in message
    assert "Did you mean 'exact_match'?" in message


def test_unknown_reward_setting(tmp_path: Path) -> None:
    data = with_(TASK, reward={"name": "exact_match", "in_mask": ["answer"], "mask": ["x"]})
    message = error_of(write_yaml(tmp_path, data))
    assert "reward.mask: unknown setting of reward 'exact_match'" in message
    assert "allowed settings: in_mask, in_mask_pattern" in message


def test_unknown_optimizer(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, optimizer="populaton_search")))
    assert "optimizer.name: unknown optimizer 'populaton_search'" in message
    assert "omega, population_search, random_few_shot" in message
    assert "Did you mean 'population_search'?" in message


def test_unknown_optimizer_setting_is_checked_against_its_signature(tmp_path: Path) -> None:
    data = with_(TASK, optimizer={"name": "population_search", "populaton_size": 3})
    message = error_of(write_yaml(tmp_path, data))
    assert "optimizer.populaton_size: unknown setting of optimizer 'population_search'" \
        in message
    assert "reflection_probability" in message and "Did you mean 'population_size'?" in message


def test_optimizer_setting_out_of_range_names_the_key(tmp_path: Path) -> None:
    data = with_(TASK, optimizer={"name": "population_search", "reflection_probability": 2})
    message = error_of(write_yaml(tmp_path, data))
    assert "optimizer.reflection_probability:" in message and "Received: 2" in message


def test_seed_belongs_in_training_not_optimizer(tmp_path: Path) -> None:
    data = with_(TASK, optimizer={"name": "random_few_shot", "seed": 3})
    assert "optimizer.seed: not a setting here: set the seed with `training.seed`" \
        in error_of(write_yaml(tmp_path, data))


def test_missing_data_file(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["data"]["validation"] = str(tmp_path / "no_such_val.jsonl")
    message = error_of(write_yaml(tmp_path, data))
    assert "data.validation: file not found:" in message and "no_such_val.jsonl" in message


def test_data_format_that_cannot_be_inferred(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["data"]["test"] = str(tmp_path / "test.csv")
    message = error_of(write_yaml(tmp_path, data))
    assert "data.format: expected 'jsonl' or 'parquet'" in message and "test.csv" in message


def test_builder_module_that_does_not_exist(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["program"] = {"builder": "helpers.no_such_module:build"}
    message = error_of(write_yaml(tmp_path, data))
    assert "program.builder: expected an importable module" in message
    assert "no module named 'helpers.no_such_module'" in message


def test_builder_function_that_does_not_exist(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["program"] = {"builder": "helpers.fit_programs:build_third"}
    message = error_of(write_yaml(tmp_path, data))
    assert "program.builder: 'helpers.fit_programs' has no attribute 'build_third'" in message
    assert "Did you mean 'build_thirds'?" in message


def test_input_model_that_is_not_a_data_model(tmp_path: Path) -> None:
    data = thirds_config(tmp_path)
    data["data"]["input_model"] = "helpers.fit_programs:build_thirds"
    message = error_of(write_yaml(tmp_path, data))
    assert "data.input_model: expected a synaray.DataModel subclass" in message


def test_unknown_task(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, task="sports_understandin")))
    assert "task.name: unknown task 'sports_understandin'" in message
    assert "object_counting" in message and "Did you mean 'sports_understanding'?" in message


def test_unknown_local_model(tmp_path: Path) -> None:
    message = error_of(write_yaml(tmp_path, with_(TASK, model="local/smollm3")))
    assert "model.model: Unknown local language model 'local/smollm3'" in message
    assert "'local/smollm2-135m'" in message


# --- bad files ------------------------------------------------------------------------------
def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('task = "sports_understanding"\n[optimizer]\nname = population_search\n')
    message = error_of(path)
    assert "invalid TOML" in message and "line 3" in message


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("task: sports_understanding\noptimizer: {name: x\nmodel: m\n")
    message = error_of(path)
    assert "invalid YAML at line" in message


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("- task: sports_understanding\n- optimizer: random_few_shot\n")
    assert "expected a mapping of settings at the top level (key: value); received a list" \
        in error_of(path)


def test_empty_file_and_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "run.yaml"
    empty.write_text("")
    assert "the config file is empty" in error_of(empty)
    ini = tmp_path / "run.ini"
    ini.write_text("[task]\n")
    assert "expected a run config ending in .yaml, .yml, .toml, .json" in error_of(ini)
    assert "config file not found" in error_of(tmp_path / "missing.yaml")


def test_json_config_with_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(with_(TASK, budget={"lm_call": 10})))
    message = error_of(path)
    assert "budget.lm_call: unknown key 'lm_call' in budget" in message
    assert "Did you mean 'lm_calls'?" in message


def test_max_tokens_is_auto_by_default_and_a_bad_value_gets_one_message(tmp_path: Path) -> None:
    from synaray.config.schema import ModelConfig

    assert ModelConfig(model="local/smollm2-135m").max_tokens == "auto"
    assert ModelConfig(model="local/smollm2-135m", max_tokens=96).max_tokens == 96
    config = thirds_config(tmp_path)
    config["model"] = {"model": "local/smollm2-135m", "max_tokens": "many"}
    with pytest.raises(ConfigError) as info:
        load_run_config(write_yaml(tmp_path, config))
    assert str(info.value).count("model.max_tokens") == 1
    assert "expected a positive integer, 'auto' (sized to the output schema) or null; " \
           "received 'many'" in str(info.value)
