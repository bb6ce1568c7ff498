"""`synaray fit` scores the program as given and the best one on the same rows.

The thirds program (`helpers.fit_programs`) is right on a third of the rows without few-shot
examples and on all of them with two, so the gain is known: validation 3/9 -> 9/9. A
data-only config (no Python module) runs through the CLI against a loopback OpenAI stub.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from helpers.data_only import parity_reply, parity_rows, write_jsonl
from helpers.fit_programs import thirds_config
from helpers.openai_stub import OpenAIStub
from synaray.callbacks import Callback
from synaray.cli.main import main
from synaray.config import load_saved_run_config, parse_run_config, run_fit
from synaray.config.before_after import COLUMNS, bootstrap_interval, compare

# Ray workers get the session's SYNARAY_* variables when the cluster starts (after import).
os.environ.setdefault("SYNARAY_TEST_STUB_KEY", "sk-test")


def test_compare_pairs_rows_and_bootstraps_the_gain() -> None:
    summary = compare([0, 0, 0, 1], [1, 1, 0, 0], seed=1)
    assert summary["before"] == 0.25 and summary["after"] == 0.5 and summary["gain"] == 0.25
    assert (summary["improved"], summary["regressed"], summary["rows"]) == (2, 1, 4)
    assert summary["ci_low"] < 0.25 < summary["ci_high"]
    assert bootstrap_interval([0.0, 1.0] * 50, seed=3) == bootstrap_interval([0.0, 1.0] * 50,
                                                                              seed=3)
    low, high = bootstrap_interval([1.0] * 30 + [0.0] * 10)
    assert 0.6 < low < 0.75 < high < 0.9  # mean 0.75, a few standard errors either side
    with pytest.raises(ValueError, match="paired"):
        compare([1.0], [1.0, 0.0])


def test_fit_scores_before_and_after_and_writes_rows(tmp_path) -> None:
    config = parse_run_config(thirds_config(tmp_path, epochs=1, run_name="ba"), "run.yaml")
    outcome = run_fit(config, verbose=False)
    assert outcome.val_reward_before == pytest.approx(3 / 9)
    assert outcome.test_reward_before == pytest.approx(3 / 9)
    val, test = outcome.comparison["val"], outcome.comparison["test"]
    assert (val["before"], val["after"]) == (pytest.approx(3 / 9), 1.0)
    assert test["improved"] == 6 and test["regressed"] == 0 and test["rows"] == 9
    assert test["ci_low"] <= test["gain"] <= test["ci_high"] and test["ci_low"] > 0
    folder = tmp_path / "runs" / "ba"
    rows = pq.read_table(folder / "predictions_test.parquet").to_pylist()
    assert list(rows[0]) == COLUMNS and len(rows) == 9
    row = next(r for r in rows if r["id"] == "n202")
    assert json.loads(row["input"]) == {"q": "202"}
    assert json.loads(row["expected"]) == {"answer": "yes"}
    assert json.loads(row["predicted_before"]) == {"answer": "no"}
    assert json.loads(row["predicted_after"]) == {"answer": "yes"}
    assert (row["reward_before"], row["reward_after"], row["change"]) == (0.0, 1.0, "improved")
    saved = json.loads((folder / "outcome.json").read_text())
    assert saved["comparison"]["val"]["gain"] == pytest.approx(6 / 9)
    assert saved["predictions"]["test"].endswith("predictions_test.parquet")


class Crash(Exception):
    """Stands for a driver killed mid-run."""


class StopAfterFirst(Callback):
    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        raise Crash(f"stopped after generation {step}")


def test_resume_reads_the_stored_before_scores(tmp_path, capsys) -> None:
    config = parse_run_config(thirds_config(tmp_path, epochs=2, run_name="rs"), "run.yaml")
    with pytest.raises(Crash):
        run_fit(config, callbacks=[StopAfterFirst()], verbose=False)
    folder = tmp_path / "runs" / "rs"
    assert (folder / "before.json").exists() and (folder / "before" / "test.parquet").exists()
    stamp = (folder / "before.json").stat().st_mtime_ns
    assert main(["resume", "rs", "--storage", str(tmp_path / "runs"), "--trust-code"]) == 0
    out = capsys.readouterr().out
    assert "initial program: scores read from" in out
    assert "scoring the initial program" not in out
    assert (folder / "before.json").stat().st_mtime_ns == stamp
    outcome = json.loads((folder / "outcome.json").read_text())
    assert outcome["test_reward_before"] == pytest.approx(3 / 9)
    assert outcome["comparison"]["test"]["after"] == 1.0


def test_compare_initial_false_scores_test_only(tmp_path) -> None:
    data = thirds_config(tmp_path, epochs=1, run_name="nc")
    data["training"]["compare_initial"] = False
    outcome = run_fit(parse_run_config(data, "run.yaml"), verbose=False)
    assert outcome.comparison == {} and outcome.val_reward_before is None
    assert outcome.test_reward == 1.0
    assert not (tmp_path / "runs" / "nc" / "before.json").exists()


def stub_config(folder: Path, api_base: str, **extra: object) -> dict:
    """A data-only config (no Python module) answered by the loopback stub."""
    write_jsonl(folder / "train.jsonl", parity_rows(range(10)))
    write_jsonl(folder / "test.jsonl", parity_rows(range(300, 306)))
    config = {"data": {"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl"),
                       "inputs": {"question": {"column": "input"}},
                       "outputs": {"answer": {"column": "target", "choices": "choices"}}},
              "model": {"model": "openai/test", "api_base": api_base,
                        "api_key_env": "SYNARAY_TEST_STUB_KEY", "cache": False},
              "optimizer": {"name": "random_few_shot", "population_size": 2,
                            "nb_min_examples": 1},
              "training": {"epochs": 1, "batch_size": 4, "validation_split": 0.3},
              "storage": str(folder / "runs")}
    config.update(extra)
    return config


def test_data_only_fit_through_the_cli_and_the_report(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with OpenAIStub(handler=parity_reply) as stub:
        Path("run.yaml").write_text(yaml.safe_dump(stub_config(tmp_path, stub.api_base)))
        assert main(["fit", "run.yaml", "--run-name", "d1"]) == 0
    out = capsys.readouterr().out
    assert "before/after" in out and "95% CI" in out
    test_line = next(line for line in out.splitlines() if line.startswith("test ")
                     and "[" in line)
    assert test_line.split()[1:5] == ["6", "0.500", "1.000", "+0.500"]
    folder = tmp_path / "runs" / "d1"
    saved = json.loads((folder / "run_config.json").read_text())
    assert saved["data"]["outputs"]["answer"]["labels"] == ["even", "odd"]
    assert load_saved_run_config(str(tmp_path / "runs"), "d1").data.outputs["answer"].labels
    assert main(["report", "d1", "--storage", str(tmp_path / "runs"), "--out",
                 str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out
    assert "test: 3 rows improved, 0 regressed, of 6" in printed
    html = (tmp_path / "r.html").read_text()
    changed = html.split('id="changed-test"')[1].split("</table>")[0]
    assert "Rows the search changed" in html and "p300" in changed and "p301" not in changed


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
def test_data_only_fit_on_ray(tmp_path) -> None:
    with OpenAIStub(handler=parity_reply) as stub:
        config = stub_config(tmp_path, stub.api_base, run_name="ray-data",
                             engine={"type": "ray", "num_evaluators": 2})
        outcome = run_fit(parse_run_config(config, "run.yaml"), verbose=False)
    assert outcome.comparison["test"]["before"] == 0.5
    assert outcome.comparison["test"]["after"] == 1.0
    best = json.loads(Path(outcome.best_program_path).read_text())
    assert '"enum": ["even", "odd"]' in json.dumps(best)  # the Literal travelled as a schema
