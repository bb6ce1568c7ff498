"""`synaray init` (a config for a data file), `synaray config` and the config reference.

`docs/config.md` is regenerated here and compared with the file: a key added to the models
without regenerating it fails this test. The JSON Schema is checked against its
meta-schema with `jsonschema`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers.data_only import parity_rows, write_jsonl
from synaray.cli.main import main
from synaray.config import load_run_config
from synaray.config.reference import json_schema, markdown_reference, sections

REPO = Path(__file__).resolve().parents[2]


# --- reference ------------------------------------------------------------------------------
def test_docs_config_md_matches_the_models() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == markdown_reference(), (
        "docs/config.md is out of date: run "
        "`python -m synaray.config.reference > docs/config.md`")


def test_every_config_key_has_a_description_in_the_reference() -> None:
    reference = markdown_reference()
    for paths, model in sections():
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            key = f"{paths[0]}.{name}".lstrip(".")
            assert f"| `{key}` |" in reference


def test_config_schema_is_valid_json_schema(capsys) -> None:
    assert main(["config", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json_schema()
    assert schema["type"] == "object" and schema["required"] == ["optimizer"]
    assert schema["additionalProperties"] is False and "DataConfig" in schema["$defs"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {"data": {"train": "d.jsonl", "inputs": ["input"],
                     "outputs": {"answer": {"column": "target", "choices": "choices"}}},
            "model": "local/smollm2-135m", "optimizer": "random_few_shot"}
    validator.validate(good)  # the shorthands are in the schema too
    validator.validate({**good, "model": {"model": "local/smollm2-135m"}, "metrics": [
        "accuracy", {"name": "f1_score"}], "optimizer": {"name": "random_few_shot"}})
    errors = list(validator.iter_errors({**good, "optimizer": {"name": "x"},
                                         "engine": {"type": "cloud"}}))
    assert errors and any("cloud" in e.message for e in errors)


def test_config_command_prints_a_checked_config_with_defaults(tmp_path, capsys,
                                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "d.jsonl", parity_rows(range(4)))
    Path("run.yaml").write_text(yaml.safe_dump({
        "data": {"train": "d.jsonl", "inputs": ["input"], "outputs": {"answer": {
            "column": "target"}}}, "model": "local/smollm2-135m",
        "optimizer": "random_few_shot"}))
    assert main(["config", "run.yaml", "--set", "training.epochs=3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["training"]["epochs"] == 3 and printed["engine"]["type"] == "local"
    assert printed["data"]["outputs"]["answer"]["column"] == "target"
    assert main(["config", "run.yaml", "--set", "engine.type=cloud"]) == 1
    assert "engine.type" in capsys.readouterr().err


# --- init -----------------------------------------------------------------------------------
def test_init_writes_a_config_that_loads_and_says_what_it_chose(tmp_path, capsys,
                                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "qa.jsonl", parity_rows(range(40)))
    assert main(["init", "qa.jsonl", "--input", "input", "--output", "target",
                 "--choices", "choices"]) == 0
    out = capsys.readouterr().out
    assert "qa.jsonl: 40 rows" in out and "choices" in out and "list[string]" in out
    assert "splits: 24 train, 8 validation, 8 test" in out
    assert "constrained to the 2 distinct choices in the file" in out
    assert "wrote qa.yaml" in out
    config = load_run_config("qa.yaml")
    assert config.data.outputs["answer"].column == "target"
    assert config.data.outputs["answer"].choices == "choices"
    assert config.data.test_split == 0.2 and config.data.shuffle
    assert config.training.validation_split == 0.25
    assert config.reward is None  # the default: exact match on the answer
    assert main(["init", "qa.jsonl", "--input", "input", "--output", "target"]) == 1
    assert "exists" in capsys.readouterr().err


def test_init_picks_labels_from_few_distinct_outputs_and_types_columns(tmp_path, capsys,
                                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [{"id": n, "text": f"t{n}", "n": n, "label": "pos" if n % 3 else "neg"}
            for n in range(6)]
    write_jsonl(tmp_path / "s.jsonl", rows)
    assert main(["init", "s.jsonl", "--input", "text", "--input", "n", "--output", "label",
                 "--out", "s.yaml"]) == 0
    out = capsys.readouterr().out
    assert "answer labels (2): neg, pos" in out
    assert "splits: 5 train, 1 validation" in out and "test" not in out.split("splits:")[1]
    config = load_run_config("s.yaml")
    assert config.data.outputs["answer"].labels == ["neg", "pos"]
    assert config.data.inputs["n"].type == "integer"
    assert config.data.test_split == 0.0


@pytest.mark.parametrize(("flags", "message"), [
    (["--input", "nope", "--output", "target"], "--input nope: no such column; the file has"),
    (["--input", "input", "--output", "target", "--choices", "target"],
     "--choices target: expected a column of lists"),
])
def test_init_errors_name_the_option(tmp_path, capsys, monkeypatch, flags, message) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "qa.jsonl", parity_rows(range(3)))
    assert main(["init", "qa.jsonl", *flags]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "qa.yaml").exists()
