"""`synaray fit` on a user's JSONL file (`input`, `choices`, `target`) with only a YAML
config, on the real local model, in a subprocess: the before/after table is printed and the
per-row predictions are in the run folder. Kept small: 6 training rows, 3 test rows, one
epoch, a population of 2, LocalEngine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from synaray.config.before_after import COLUMNS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ROWS = REPO / "examples" / "data" / "choices.jsonl"


@pytest.mark.llm
@pytest.mark.slow
def test_data_only_fit_on_the_local_model(tmp_path, local_lm_server) -> None:
    rows = [json.loads(line) for line in EXAMPLE_ROWS.read_text().splitlines()]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[6:9]))
    config = {
        "data": {"train": "train.jsonl", "test": "test.jsonl",
                 "inputs": {"question": {"column": "input"}},
                 "outputs": {"answer": {"column": "target", "choices": "choices"}}},
        "program": {"instructions": "Answer the question with one of the choices."},
        "model": {"model": "local/smollm2-135m", "max_tokens": 32},
        "optimizer": {"name": "random_few_shot", "population_size": 2,
                      "nb_max_examples": 2},
        "training": {"epochs": 1, "batch_size": 4, "validation_split": 0.34},
        "engine": {"type": "local", "max_concurrency": 2},
        "storage": str(tmp_path / "runs"), "run_name": "own-data"}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    done = subprocess.run([sys.executable, "-m", "synaray.cli.main", "fit", "run.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "scoring the initial program on 2 validation, 3 test examples" in out
    header = next(line for line in out.splitlines() if line.startswith("before/after"))
    assert "gain" in header and "95% CI" in header
    test_row = next(line for line in out.splitlines()
                    if line.startswith("test ") and "[" in line)
    assert test_row.split()[1] == "3"
    folder = tmp_path / "runs" / "own-data"
    table = pq.read_table(folder / "predictions_test.parquet").to_pylist()
    assert [r["id"] for r in table] == ["q6", "q7", "q8"]
    assert list(table[0]) == COLUMNS
    labels = {c for r in rows[:9] for c in r["choices"]}
    for row in table:
        for when in ("before", "after"):
            predicted = row[f"predicted_{when}"]
            assert predicted is not None or row[f"error_{when}"]
            if predicted is not None:  # grammar-constrained to the labels in the data
                assert json.loads(predicted)["answer"] in labels
    outcome = json.loads((folder / "outcome.json").read_text())
    assert set(outcome["comparison"]) == {"val", "test"}
