"""Messages keep the useful part: the file, the row, the field and pydantic's reason; the
repeated ids; a failed `synaray evaluate` leaves no partial output."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import yaml

import synaray
from helpers.fit_programs import thirds_config
from synaray.cli.evaluate_support import jsonl_to_parquet
from synaray.cli.main import main
from synaray.data import load_jsonl
from synaray.data.datasets import Dataset
from synaray.errors import DataError


class Question(synaray.DataModel):
    query: str


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_wrong_typed_field_names_row_field_and_reason(tmp_path) -> None:
    rows = [{"id": f"r{n}", "input": f"q{n}"} for n in range(10)]
    rows[7]["input"] = 12
    path = _rows(tmp_path / "questions.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_jsonl(path, Question, input_fields={"query": "input"})
    message = str(info.value)
    assert message == (f"{path}, row 8: the row does not fit Question: field 'query' "
                       "(column 'input'): Input should be a valid string (got 12)")
    assert "validation error" not in message


def test_duplicate_ids_name_the_file_and_the_ids(tmp_path) -> None:
    path = _rows(tmp_path / "dup.jsonl", [{"id": "a", "query": "x"}, {"id": "b", "query": "y"},
                                         {"id": "a", "query": "z"}])
    with pytest.raises(DataError, match=r"dup.jsonl: ids in column 'id' must be unique; "
                                        r"repeated: 'a' \(rows 1, 3\)"):
        load_jsonl(path, Question)
    with pytest.raises(DataError, match=r"dup.jsonl: ids in column 'id' must be unique; "
                                        r"repeated: 'a' \(rows 1, 3\)"):
        jsonl_to_parquet(str(path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match=r"repeated: 'x' \(rows 1, 2\)"):
        Dataset(["x", "x"], [Question(query="1"), Question(query="2")])


@pytest.mark.parametrize("out_exists", [False, True])
def test_evaluate_with_a_missing_program_leaves_no_output(tmp_path, capsys, out_exists) -> None:
    data = _rows(tmp_path / "val.jsonl", [{"id": "a", "query": "x"}])
    out = tmp_path / "results"
    if out_exists:
        out.mkdir()
    code = main(["evaluate", "--program", str(tmp_path / "missing.json"), "--data", str(data),
                 "--out", str(out), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "missing.json" in err and len(err.strip().splitlines()) == 1
    assert out.exists() == out_exists
    assert not list(tmp_path.rglob("input-*.parquet"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_s3_storage_is_one_line_and_exits_non_zero(tmp_path, capsys,
                                                               monkeypatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(thirds_config(tmp_path)))
    storage = (f"s3://bucket/runs?endpoint_override=127.0.0.1:{_closed_port()}"
               "&scheme=http&region=us-east-1")
    started = time.monotonic()
    assert main(["fit", str(config), "--storage", storage, "--quiet"]) == 1
    assert time.monotonic() - started < 120  # the SDK retries a few times, then gives up
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out
    assert lines[0].startswith("synaray fit: error: ")
    assert "bucket" in lines[0] and f"--storage {storage}" in lines[0]


@pytest.mark.parametrize("name", ["synaray.saving", "synaray.data.datasets",
                                  "synaray.config.checks"])
def test_docstring_examples(name) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


async def test_evaluate_failing_on_its_data_leaves_no_output(tmp_path, capsys) -> None:
    from .test_safe_loading import _saved_program

    program = await _saved_program(tmp_path)
    data = _rows(tmp_path / "val.jsonl", [{"id": "a", "question": "x", "answer": "yes"}])
    out = tmp_path / "results"
    assert main(["evaluate", "--program", str(program), "--data", str(data), "--out", str(out),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "query" in err and len(err.strip().splitlines()) == 1  # the missing column
    assert f"error: {data}: missing input column(s) 'query'" in err  # the user's file
    assert not out.exists()  # the JSONL converted into it went with it
