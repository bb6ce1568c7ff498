"""A saved program file has one reader (`synaray.program_payload.read_program_file`), and
`synaray evaluate --program` builds the program it reads once.

Builds are counted through a registered language model that counts its constructions (one
per build of a program holding it). The evaluation scores an empty Parquet file: the driver
reads, checks and plans as for any data, and no Ray worker starts. No LM call is made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import synaray
from synaray.cli.main import main
from synaray.engines.bulk_io import resolve_programs
from synaray.errors import CheckpointError, CheckpointVersionError
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel


class Query(synaray.DataModel):
    query: str


class Answer(synaray.DataModel):
    answer: str


@register_synaray_serializable(package="tests_program_load")
def say_yes(messages, schema):
    return {"answer": "yes"}


@register_synaray_serializable(package="tests_program_load")
class CountingLanguageModel(FakeLanguageModel):
    """A fake model that counts how often it is constructed (loading builds it anew)."""

    built = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        type(self).built += 1


@pytest.fixture
async def saved(tmp_path) -> Path:
    inputs = synaray.Input(data_model=Query)
    outputs = await synaray.Generator(
        data_model=Answer, language_model=CountingLanguageModel(say_yes))(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="qa")
    program.compile(reward="exact_match", optimizer="random_few_shot")
    path = tmp_path / "best_program.json"
    program.save(path)
    return path


def builds_per_load(path: Path, monkeypatch) -> int:
    """Constructions of the counting model in one `Program.load` of `path` (at least 1)."""
    monkeypatch.setattr(CountingLanguageModel, "built", 0)
    synaray.Program.load(path)
    per_load = CountingLanguageModel.built
    assert per_load >= 1
    monkeypatch.setattr(CountingLanguageModel, "built", 0)
    return per_load


def path_config(path: Path):
    """A run config whose program is the saved program at `path` (`program.path`)."""
    from synaray.config import parse_run_config

    return parse_run_config(
        {"program": {"path": str(path)},
         "data": {"train": "train.jsonl", "input_model": f"{__name__}:Query",
                  "output_model": f"{__name__}:Answer"},
         "reward": "exact_match", "optimizer": "random_few_shot"}, "run.yaml",
        check_files=False)


def test_evaluate_builds_the_saved_program_once(saved, tmp_path, monkeypatch) -> None:
    data = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string()),
                             "query": pa.array([], pa.string()),
                             "answer": pa.array([], pa.string())}), data)
    out = tmp_path / "results"
    per_load = builds_per_load(saved, monkeypatch)
    assert main(["evaluate", "--program", str(saved), "--data", str(data), "--out", str(out),
                 "--quiet", "--no-preflight"]) == 0
    assert CountingLanguageModel.built == per_load  # read, checked and planned: one build
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 0 and list(summary["programs"]) == ["best_program"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["programs"]["best_program"]["reward"]  # the built program's reward


async def test_config_program_path_builds_the_saved_program_once(saved, tmp_path,
                                                                 monkeypatch) -> None:
    from synaray.config.program_building import build_program

    config = path_config(saved)
    per_load = builds_per_load(saved, monkeypatch)
    program = await build_program(config)
    assert CountingLanguageModel.built == per_load
    assert program.name == "qa" and program.reward.name == "exact_match"


def test_a_resolved_spec_is_not_read_or_built_again(saved, monkeypatch) -> None:
    specs = resolve_programs(str(saved))
    assert specs[0].program is not None and specs[0].program.name == "qa"
    monkeypatch.setattr(CountingLanguageModel, "built", 0)
    assert resolve_programs(specs) == specs
    assert resolve_programs({"renamed": specs[0]})[0].program_id == "renamed"
    assert CountingLanguageModel.built == 0


def _bad_files(folder: Path, saved: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a bad program file, what its message must say besides the file)."""
    payload = json.loads(saved.read_text())
    files = {"missing": (folder / "missing.json", "Program file not found"),
             "folder": (folder / "a_folder.json", "Cannot read program file"),
             "not json": (folder / "bad.json", "is not valid JSON"),
             "not utf-8": (folder / "latin.json", "is not a UTF-8 text file"),
             "other json": (folder / "other.json", "is not a saved synaray program"),
             "no architecture": (folder / "headless.json", "expected a `config` object"),
             "newer": (folder / "newer.json", "Upgrade synaray")}
    files["folder"][0].mkdir()
    files["not json"][0].write_text("{not json")
    files["not utf-8"][0].write_bytes(b'{"format": "synaray.program", "x": "\xe9"}')
    files["other json"][0].write_text('{"format": "something else"}')
    files["no architecture"][0].write_text('{"format": "synaray.program"}')
    files["newer"][0].write_text(json.dumps({**payload, "schema_version": 99}))
    return files


@pytest.mark.parametrize("case", ["missing", "folder", "not json", "not utf-8", "other json",
                                  "no architecture", "newer"])
async def test_every_reader_names_the_file_and_what_was_expected(saved, tmp_path, case,
                                                                 capsys) -> None:
    from synaray.config.program_building import build_program

    path, expected = _bad_files(tmp_path, saved)[case]
    with pytest.raises(CheckpointError) as loaded:
        synaray.Program.load(path)
    message = str(loaded.value)
    assert str(path) in message and expected in message
    if case == "newer":
        assert isinstance(loaded.value, CheckpointVersionError)
    # bulk evaluation and a config's program.path read it the same way, with the same words
    if case != "folder":  # bulk evaluation reads a folder as a run folder
        with pytest.raises(CheckpointError) as resolved:
            resolve_programs(str(path))
        assert str(resolved.value) == message
    config = path_config(path)
    with pytest.raises(CheckpointError) as built:
        await build_program(config)
    assert str(built.value) == message
    if case == "folder":
        return
    # the command line says it in one line and writes nothing
    out = tmp_path / "results"
    assert main(["evaluate", "--program", str(path), "--data", str(tmp_path / "d.parquet"),
                 "--out", str(out), "--quiet", "--no-preflight"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and not out.exists()


def test_a_file_uri_reads_like_its_path(saved) -> None:
    program = synaray.Program.load(f"file://{saved}")
    assert program.name == "qa" and program.get_module("generator").data_model is Answer


def test_an_object_store_uri_reads_like_a_path_and_hides_credentials(saved,
                                                                     monkeypatch) -> None:
    from helpers.s3_server import moto_s3

    with moto_s3("programs", monkeypatch) as server:
        server.client.put_object(Bucket="programs", Key="run/best_program.json",
                                 Body=saved.read_bytes())
        uri = server.uri("run/best_program.json")
        assert synaray.Program.load(uri).name == "qa"
        spec = resolve_programs(uri)[0]
        assert spec.program_id == "best_program" and spec.program.name == "qa"
        secret = server.uri("run/missing.json").replace("s3://", "s3://testing:s3cr3t@")
        with pytest.raises(CheckpointError) as info:
            synaray.Program.load(secret)
    message = str(info.value)
    assert "s3://***@programs/run/missing.json" in message and "s3cr3t" not in message
