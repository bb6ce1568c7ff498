"""Programs built from a run config's data description (`data.inputs`/`data.outputs`).

The builder makes typed DataModels (templates, Literal labels from a fixed set or from a
per-row choices column), the data loads through them, the program saves and loads as JSON
without its classes, and the reward defaults to exact match on the output fields. LM calls
are answered by a FakeLanguageModel (`helpers.data_only`).
"""

from __future__ import annotations

import asyncio
import json
import typing
from pathlib import Path

import pytest
import yaml

import synaray
from helpers.data_only import parity_handler, parity_reply, parity_rows, write_jsonl
from helpers.openai_stub import OpenAIStub
from synaray.cli.main import main
from synaray.config import load_run_config, parse_run_config
from synaray.config.data_loading import load_splits
from synaray.config.data_program import (
    MAX_LABELS,
    data_models,
    described_dataset,
    with_resolved_labels,
)
from synaray.config.program_building import build_program
from synaray.config.schema import DataConfig
from synaray.errors import ConfigError, DataError
from synaray.testing import FakeLanguageModel


def parity_config(folder: Path, **data: object) -> dict:
    spec = {"train": write_jsonl(folder / "train.jsonl", parity_rows(range(12))),
            "validation": write_jsonl(folder / "val.jsonl", parity_rows(range(100, 106))),
            "test": write_jsonl(folder / "test.jsonl", parity_rows(range(200, 206))),
            "inputs": {"question": {"column": "input", "description": "A number question"}},
            "outputs": {"answer": {"column": "target", "choices": "choices"}}}
    spec.update(data)
    return {"data": spec, "model": "local/smollm2-135m",
            "program": {"instructions": "Say if the number is even or odd."},
            "optimizer": {"name": "random_few_shot", "population_size": 2,
                          "nb_min_examples": 1, "nb_max_examples": 2},
            "training": {"epochs": 1, "batch_size": 6}, "storage": str(folder / "runs")}


def input_schema(program: synaray.Program) -> dict:
    return program.get_config()["inputs"][0]["schema"]


def fake() -> FakeLanguageModel:
    return FakeLanguageModel(parity_handler)


def build(config: dict) -> synaray.Program:
    return asyncio.run(build_program(parse_run_config(config, "run.yaml"), lm=fake()))


def test_a_config_without_python_builds_a_typed_generator(tmp_path) -> None:
    program = build(parity_config(tmp_path))
    generator = program.modules[0]
    assert type(generator).__name__ == "Generator"
    assert generator.instructions == "Say if the number is even or odd."
    answer = generator.schema["properties"]["answer"]
    assert answer["enum"] == ["even", "odd"]  # the per-row choices' union: a Literal
    inputs = input_schema(program)["properties"]
    assert inputs["question"]["description"] == "A number question"
    assert inputs["choices"]["type"] == "array"  # each row's choices reach the prompt
    assert program.name == "train"
    assert program.reward.name == "exact_match" and program.reward.in_mask == ["answer"]
    assert [m.name for m in program.metrics] == ["accuracy"]


def test_the_described_data_loads_and_scores(tmp_path) -> None:
    config = parse_run_config(parity_config(tmp_path), "run.yaml")
    splits = load_splits(config)
    x, y = splits.test.fetch(["p201"])[0]
    assert x.get_json() == {"question": "Is 201 even or odd?", "choices": ["even", "odd"]}
    assert y.get_json() == {"answer": "odd"}
    program = asyncio.run(build_program(config, lm=fake()))
    logs = asyncio.run(program.evaluate(splits.test, verbose=False))
    assert logs["reward"] == pytest.approx(0.5)  # no examples: "odd" everywhere
    assert logs["accuracy"] == pytest.approx(0.5)


def test_a_template_composes_columns_and_chain_of_thought_is_compared_on_the_answer(
        tmp_path) -> None:
    config = parity_config(tmp_path, inputs={"question": {
        "template": "{input} Options: {choices}"}})
    config["program"]["kind"] = "chain_of_thought"
    parsed = parse_run_config(config, "run.yaml")
    program = asyncio.run(build_program(parsed, lm=fake()))
    assert type(program.modules[0]).__name__ == "ChainOfThought"
    assert list(input_schema(program)["properties"]) == ["question"]  # no field added
    x, _ = load_splits(parsed).train.fetch(["p3"])[0]
    assert x.get_json() == {"question": 'Is 3 even or odd? Options: ["even", "odd"]'}
    # the model's `thinking` differs from the data's nothing: exact match on `answer` only
    logs = asyncio.run(program.evaluate(load_splits(parsed).test, verbose=False))
    assert logs["reward"] == pytest.approx(0.5)


def test_fixed_labels_types_and_numbers_as_labels() -> None:
    data = DataConfig(train="t.jsonl", inputs={"n": {"type": "int"}, "tags": {"type": "list"}},
                      outputs={"label": {"labels": ["1", "2"]}, "score": {"type": "float"}})
    x_model, y_model = data_models(data)
    hints = typing.get_type_hints(y_model)
    assert typing.get_args(hints["label"]) == ("1", "2")
    assert hints["score"] is float
    assert typing.get_type_hints(x_model)["n"] is int
    rows = [{"id": "a", "n": 3, "tags": ["x"], "label": 2, "score": 0.5}]
    dataset = described_dataset(rows, data, (x_model, y_model), "rows.jsonl")
    assert dataset.y[0].get_json() == {"label": "2", "score": 0.5}  # 2 read as the label "2"
    bad = [{"id": "b", "n": 3, "tags": ["x"], "label": "3", "score": 1.0}]
    with pytest.raises(DataError, match=r"rows.jsonl, row 1: .*label"):
        described_dataset(bad, data, (x_model, y_model), "rows.jsonl")


def test_labels_are_read_once_and_kept_in_the_resolved_config(tmp_path) -> None:
    rows = parity_rows(range(4))
    rows[0]["choices"] = ["even", "odd", "zero"]
    config = parity_config(tmp_path)
    config["data"].update(train=write_jsonl(tmp_path / "t.jsonl", rows), validation=None,
                          test=None)
    resolved = with_resolved_labels(parse_run_config(config, "run.yaml"))
    assert resolved.data.outputs["answer"].labels == ["even", "odd", "zero"]
    assert resolved.source == "run.yaml"
    assert with_resolved_labels(resolved) is resolved  # nothing left to read
    many = [{"id": str(n), "input": f"Is {n} even or odd?", "choices": [str(n)],
             "target": str(n)} for n in range(MAX_LABELS + 1)]
    config["data"]["train"] = write_jsonl(tmp_path / "many.jsonl", many)
    program = build(config)
    assert program.modules[0].schema["properties"]["answer"]["type"] == "string"  # free text


def test_the_program_saves_and_loads_without_its_classes(tmp_path) -> None:
    program = build(parity_config(tmp_path))
    path = tmp_path / "program.json"
    program.save(path)
    loaded = synaray.Program.load(path)
    assert loaded.modules[0].schema["properties"]["answer"]["enum"] == ["even", "odd"]
    out = asyncio.run(loaded({"question": "Is 4 even or odd?", "choices": ["even", "odd"]}))
    assert out.get_json() == {"answer": "odd"}
    assert loaded.reward.in_mask == ["answer"]


def test_bad_descriptions_name_the_key_and_the_row(tmp_path) -> None:
    config = parity_config(tmp_path, inputs={"question": {"template": "{input.upper}"}})
    with pytest.raises(ConfigError, match=r"run.yaml: data.inputs.question.template: expected "
                                          r"column names in braces"):
        parse_run_config(config, "run.yaml")
    config = parity_config(tmp_path, inputs={"question": {"column": "missing"}})
    with pytest.raises(DataError, match=r"train.jsonl, row 1: missing column 'missing' for "
                                        r"field 'question'"):
        load_splits(parse_run_config(config, "run.yaml"))
    rows = parity_rows(range(2))
    rows[1]["choices"] = "even"
    config = parity_config(tmp_path)
    config["data"]["train"] = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad.jsonl, row 2: column 'choices'.*expected a list"):
        build(config)
    no_model = parity_config(tmp_path)
    del no_model["model"]
    with pytest.raises(ConfigError, match=r"run.yaml: model: missing required key"):
        parse_run_config(no_model, "run.yaml")


def test_test_split_and_shuffle_hold_out_rows_of_one_file(tmp_path) -> None:
    config = parity_config(tmp_path, validation=None, test=None, shuffle=True, test_split=0.25)
    config["training"]["validation_split"] = 0.25
    splits = load_splits(parse_run_config(config, "run.yaml"))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 2, 3)
    ids = splits.train.ids + splits.val.ids + splits.test.ids
    assert sorted(ids) == sorted(f"p{n}" for n in range(12))
    assert ids != [f"p{n}" for n in range(12)]  # shuffled (seeded: the same every time)
    again = load_splits(parse_run_config(config, "run.yaml"))
    assert again.test.ids == splits.test.ids


def test_the_data_only_example_loads_with_its_splits(monkeypatch) -> None:
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # the example names its data from the repository root
    config = load_run_config("examples/choices_data_only.yaml")
    assert config.program.from_data() and config.data.outputs["answer"].choices == "choices"
    splits = load_splits(with_resolved_labels(config))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 6, 8)
    x, y = splits.test.fetch([splits.test.ids[0]])[0]
    assert y.get_json()["answer"] in x.get_json()["choices"]


def test_fit_data_flags_run_the_config_init_writes(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "q.jsonl", parity_rows(range(20)))
    flags = ["--input", "input", "--output", "target", "--choices", "choices"]
    with OpenAIStub(handler=parity_reply) as stub:
        overrides = ["--set", "model.model=openai/test", "--set",
                     f"model.api_base={stub.api_base}", "--set", "model.cache=false"]
        assert main(["fit", "--data", "q.jsonl", *flags, "--run-name", "d", "--storage",
                     str(tmp_path / "runs"), *overrides]) == 0
    out = capsys.readouterr().out
    assert "synaray init q.jsonl --input input --output target --choices choices" in out
    assert "before/after" in out  # a full fit: scored before and after
    saved = json.loads((tmp_path / "runs" / "d" / "run_config.json").read_text())
    assert main(["init", "q.jsonl", *flags]) == 0
    written = parse_run_config(yaml.safe_load(Path("q.yaml").read_text()), "q.yaml")
    assert saved["data"]["inputs"] == written.model_dump(mode="json")["data"]["inputs"]
    assert saved["data"]["outputs"]["answer"]["choices"] == "choices"
    assert saved["data"]["test_split"] == written.data.test_split == 0.2
    assert saved["program"]["instructions"] == written.program.instructions
    assert saved["training"]["validation_split"] == written.training.validation_split
    assert saved["optimizer"]["name"] == written.optimizer.name


@pytest.mark.parametrize(("argv", "message"), [
    (["fit"], "fit needs a CONFIG file, or --data FILE"),
    (["fit", "--input", "input"], "--input goes with --data FILE"),
    (["fit", "run.yaml", "--data", "q.jsonl"], "not both"),
    (["fit", "--data", "q.jsonl", "--input", "input"], "--data needs --input COLUMN"),
    (["fit", "--data", "q.jsonl", "--input", "nope", "--output", "target"],
     "--input nope: no such column"),
])
def test_fit_data_flags_name_what_is_missing(tmp_path, monkeypatch, capsys, argv,
                                             message) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "q.jsonl", parity_rows(range(4)))
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_evaluate_maps_rows_to_the_fields_fit_read(tmp_path, monkeypatch, capsys) -> None:
    import pyarrow.parquet as pq

    from synaray.engines.ray import bulk_evaluate as bulk

    config = parity_config(tmp_path, inputs={"question": {
        "template": "{input} Options: {choices}"}})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    build(config).save(tmp_path / "program.json")
    seen: dict = {}

    def scored(program, data, out, **kwargs):  # Ray Data's scoring itself is tested elsewhere
        seen.update(data=data, **kwargs)
        return {"programs": {}}

    monkeypatch.setattr(bulk, "bulk_evaluate", scored)
    argv = ["evaluate", "--program", str(tmp_path / "program.json"), "--config",
            str(tmp_path / "run.yaml"), "--data", config["data"]["test"], "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "res")]) == 0
    rows = pq.read_table(seen["data"]).to_pylist()
    assert rows[0] == {"id": "p200", "question": 'Is 200 even or odd? Options: ["even", "odd"]',
                       "answer": "even"}  # as fit read it: the template holds the choices
    assert len(rows) == 6 and seen["input_fields"] is None
    assert main([*argv, "--out", str(tmp_path / "res2"), "--input-field", "input=question"]) == 1
    assert "Leave the field maps out" in capsys.readouterr().err
    assert not (tmp_path / "res2").exists()
