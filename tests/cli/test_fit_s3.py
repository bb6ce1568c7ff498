"""A run config whose data and run storage are on S3 (a moto server on loopback).

Data files are read through pyarrow (`s3://bucket/key?endpoint_override=...`), the run
folder is written through `RunStorage`, and `synaray resume` reads `run_config.json` back
from S3. LocalEngine: no Ray needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import synaray
from helpers.fit_programs import thirds_config
from helpers.s3_server import moto_s3
from synaray.callbacks import Callback
from synaray.cli.main import main
from synaray.config import load_run_config, run_fit

BUCKET = "synaray-data"
@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server with an empty bucket; yields (uri of a key, boto3 client)."""
    with moto_s3(BUCKET, monkeypatch) as server:
        yield server.uri, server.client


class StopAfter(Callback):
    def on_batch_end(self, step, logs=None):
        if step == 3:
            raise RuntimeError("stopped")


def test_data_and_storage_on_s3(s3, tmp_path: Path, capsys) -> None:
    uri, client = s3
    local = thirds_config(tmp_path)
    for split in ("train", "validation"):
        client.put_object(Bucket=BUCKET, Key=f"data/{split}.jsonl",
                          Body=Path(local["data"][split]).read_bytes())
    rows = [json.loads(line) for line in Path(local["data"]["test"]).read_text().splitlines()]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    client.put_object(Bucket=BUCKET, Key="data/test.parquet", Body=sink.getvalue().to_pybytes())
    local["data"].update(train=uri("data/train.jsonl"), validation=uri("data/validation.jsonl"),
                         test=uri("data/test.parquet"), limit={"train": 18})
    local["storage"] = uri("runs")
    path = tmp_path / "s3.yaml"
    path.write_text(yaml.safe_dump(local))

    config = load_run_config(path, {"run_name": "on-s3"})
    with pytest.raises(RuntimeError, match="stopped"):
        run_fit(config, callbacks=[StopAfter()], verbose=False)
    assert main(["resume", "on-s3", "--storage", uri("runs"), "--quiet", "--trust-code"]) == 0
    out = capsys.readouterr().out
    assert "best program: s3://synaray-data/runs/on-s3/best_program.json?" in out

    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="runs/on-s3/")
            ["Contents"]}
    assert {"runs/on-s3/run_config.json", "runs/on-s3/best_program.json",
            "runs/on-s3/outcome.json", "runs/on-s3/data/train.parquet"} <= keys
    outcome = json.loads(client.get_object(Bucket=BUCKET, Key="runs/on-s3/outcome.json")
                         ["Body"].read())
    assert outcome["generations"] == 6  # 18 training rows (limit), batch 6, 2 epochs
    assert outcome["test_reward"] == 1.0
    best = client.get_object(Bucket=BUCKET, Key="runs/on-s3/best_program.json")["Body"].read()
    (tmp_path / "best.json").write_bytes(best)
    assert synaray.Program.load(tmp_path / "best.json").name == "thirds"
