"""`synaray resume` reads run_config.json from run storage, which others may write: the code
it names runs only with --trust-code, or when --config names the same code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from helpers.fit_programs import thirds_config
from synaray.cli.main import main
from synaray.config import (
    load_run_config,
    load_saved_run_config,
    parse_run_config,
    read_config_file,
)
from synaray.config.components import import_object
from synaray.errors import ConfigError
from synaray.saving import safe_mode_scope


def _stored_run(tmp_path: Path, **changes: object) -> Path:
    """A run folder holding a run_config.json (as `synaray fit` writes one), edited."""
    config = thirds_config(tmp_path)
    config.update(changes)
    folder = tmp_path / "runs" / "r1"
    folder.mkdir(parents=True)
    (folder / "run_config.json").write_text(json.dumps(config))
    return folder


def test_resume_refuses_a_stored_builder_naming_os_system(tmp_path, capsys) -> None:
    marker = tmp_path / "MARKER"
    folder = _stored_run(tmp_path, program={"builder": "os:system",
                                            "args": {"command": f"touch {marker}"}})
    assert main(["resume", "r1", "--storage", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "program.builder" in err and "'os:system'" in err
    assert str(folder / "run_config.json") in err and "--trust-code" in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_a_synaray_path_reaching_os_system_is_refused_too(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    with safe_mode_scope(True, source="run_config.json"), \
            pytest.raises(ConfigError, match=r"run_config.json: program.builder: refusing to "
                                             r"import 'synaray.config.components:os.system'"):
        builder = import_object("synaray.config.components:os.system", "run_config.json",
                                "program.builder")
        builder(command=f"touch {marker}")
    assert not marker.exists()


def test_stored_reward_and_data_model_references_are_refused(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil_stored.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\nclass Q: pass\n"
                    "def score(a, b): return 1.0\n")
    sys.path.insert(0, str(tmp_path))
    try:
        config = thirds_config(tmp_path)
        for key, value in (("reward", "evil_stored:score"),
                           ("data", {**config["data"], "input_model": "evil_stored:Q"})):
            folder = tmp_path / "runs" / "r1"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "run_config.json").write_text(json.dumps({**config, key: value}))
            with pytest.raises(ConfigError, match="evil_stored:"):
                load_saved_run_config(str(tmp_path / "runs"), "r1")
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists() and "evil_stored" not in sys.modules


def test_trust_code_or_the_same_config_allows_the_stored_code(tmp_path) -> None:
    _stored_run(tmp_path)
    storage = str(tmp_path / "runs")
    with pytest.raises(ConfigError, match=r"helpers\.fit_programs:build_thirds"):
        load_saved_run_config(storage, "r1")
    trusted = load_saved_run_config(storage, "r1", trust_code=True)
    assert trusted.program.builder == "helpers.fit_programs:build_thirds"
    given = tmp_path / "run.yaml"
    given.write_text(yaml.safe_dump(thirds_config(tmp_path)))
    same = load_saved_run_config(storage, "r1", given=load_run_config(given))
    assert same.data.input_model == "helpers.fit_programs:Number"
    changed_args = thirds_config(tmp_path)
    changed_args["program"]["args"] = {"latency_s": 1.0}
    given.write_text(yaml.safe_dump(changed_args))
    with pytest.raises(ConfigError, match=r"program: the stored run config's program section"):
        load_saved_run_config(storage, "r1", given=load_run_config(given))
    other = thirds_config(tmp_path, reward="helpers.fit_programs:other_reward")
    given.write_text(yaml.safe_dump(other))
    with pytest.raises(ConfigError, match=r"reward.name: the stored run config names no code "
                                          r"outside synaray but .*run.yaml names "
                                          r"'helpers.fit_programs:other_reward'"):
        load_saved_run_config(storage, "r1", given=parse_run_config(
            read_config_file(given), str(given), check=False))


def test_a_stored_config_naming_only_synaray_code_needs_no_flag(tmp_path) -> None:
    folder = tmp_path / "runs" / "t1"
    folder.mkdir(parents=True)
    (folder / "run_config.json").write_text(json.dumps(
        {"task": "sports_understanding", "model": "local/smollm2-135m",
         "optimizer": "random_few_shot"}))
    config = load_saved_run_config(str(tmp_path / "runs"), "t1")
    assert config.task.name == "sports_understanding"


def test_import_object_in_safe_mode_imports_only_synaray() -> None:
    with safe_mode_scope(True, source="stored.json"):
        assert import_object("synaray.rewards:ExactMatch", "stored.json", "reward.name")
        with pytest.raises(ConfigError, match=r"stored\.json: reward\.name: refusing"):
            import_object("json:loads", "stored.json", "reward.name")
    assert import_object("json:loads", "run.yaml", "reward.name") is json.loads
