"""Planning a sweep (every trial's run config checked), one trial in-process, the results
table, the Tune reporter and `synaray sweep --dry-run`: no Ray."""

import json
import os

import pytest
import yaml

import synaray
from helpers.sweep_program import sweep_config
from synaray.cli.main import main
from synaray.errors import ConfigError
from synaray.sweeps import SweepResult, TuneReporter, plan_sweep, rank_rows, run_trial

GRID = {"program.args.skill": {"values": [0.25, 0.75]},
        "optimizer.population_size": {"values": [1, 2]}}


def test_plan_validates_every_trial_and_names_runs(tmp_path):
    plan = plan_sweep(sweep_config(tmp_path, GRID), storage=str(tmp_path / "s"), name="demo")
    assert len(plan.trials) == len(plan.configs) == 4
    assert plan.root == str(tmp_path / "s" / "demo")
    assert [c.run_name for c in plan.configs] == [f"demo-t00{i}" for i in range(4)]
    assert {c.storage for c in plan.configs} == {plan.runs_storage}
    assert [c.program.args["skill"] for c in plan.configs] == [0.25, 0.25, 0.75, 0.75]
    assert [c.optimizer.settings["population_size"] for c in plan.configs] == [1, 2, 1, 2]
    assert {c.engine.type for c in plan.configs} == {"local"}
    assert not plan.uses_local_model()


def test_trials_skip_the_before_after_scoring_unless_the_file_asks(tmp_path):
    plan = plan_sweep(sweep_config(tmp_path, GRID), storage=str(tmp_path / "s"), name="a")
    assert {c.training.compare_initial for c in plan.configs} == {False}
    config = sweep_config(tmp_path, GRID)
    config.setdefault("training", {})["compare_initial"] = True
    asked = plan_sweep(config, storage=str(tmp_path / "s"), name="b")
    assert {c.training.compare_initial for c in asked.configs} == {True}
    overridden = plan_sweep(sweep_config(tmp_path, GRID), storage=str(tmp_path / "s"),
                            name="c", overrides={"training.compare_initial": True})
    assert {c.training.compare_initial for c in overridden.configs} == {True}
    swept = plan_sweep(sweep_config(tmp_path, {"training.compare_initial":
                                               {"values": [True, False]}}),
                       storage=str(tmp_path / "s"), name="d")
    assert [c.training.compare_initial for c in swept.configs] == [True, False]
    from synaray.config import parse_run_config

    fit = parse_run_config({k: v for k, v in sweep_config(tmp_path, GRID).items()
                            if k != "sweep"}, "fit.yaml")
    assert fit.training.compare_initial  # `synaray fit` keeps it on


def test_plan_reads_a_file_and_defaults_its_name_and_storage(tmp_path):
    path = tmp_path / "my_sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_config(tmp_path, GRID), sort_keys=False))
    plan = plan_sweep(path)
    assert plan.name.startswith("my_sweep-")
    assert plan.storage == str(tmp_path / "runs")  # the config's storage


def test_a_swept_value_that_breaks_the_run_config_names_trial_and_key(tmp_path):
    config = sweep_config(tmp_path, {"optimizer.population_sise": {"values": [1, 2]}})
    with pytest.raises(ConfigError, match=r"sweep trial 0 .*optimizer.population_sise"):
        plan_sweep(config)
    config = sweep_config(tmp_path, {"training.batch_size": {"values": [4, 0]}})
    with pytest.raises(ConfigError, match=r"sweep trial 1 \(training.batch_size=0\).*"
                                          r"training.batch_size"):
        plan_sweep(config)


def test_missing_sweep_section_and_conflicting_overrides(tmp_path):
    config = sweep_config(tmp_path, GRID)
    with pytest.raises(ConfigError, match="no `sweep` section"):
        plan_sweep({k: v for k, v in config.items() if k != "sweep"})
    with pytest.raises(ConfigError, match=r"override 'program\.args\.skill'.*varies this key"):
        plan_sweep(config, overrides={"program.args.skill": 1.0})
    with pytest.raises(ConfigError, match="override 'run_name'"):
        plan_sweep(config, overrides={"run_name": "x"})


def test_one_trial_runs_in_process_and_reports_each_generation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = plan_sweep(sweep_config(tmp_path, GRID), name="inproc")
    reports = []
    run_trial({"trial": 3}, run_configs=plan.configs, env={}, workdir=os.getcwd(),
              report=reports.append)
    generations = [r for r in reports[:-1] if "generation" in r]
    assert len(generations) >= 2  # 8 training rows, batch 4: one report per generation
    assert all("reward" in r and "lm_calls" in r for r in generations)
    final = reports[-1]
    assert final["run_name"] == "inproc-t003"
    assert final["val_reward"] == pytest.approx(0.75, abs=0.2)
    assert final["lm_calls"] >= generations[-1]["lm_calls"] > 0
    program = synaray.Program.load(final["best_program_path"])
    assert "skill=0.75" in json.dumps(program.get_state())


def test_rows_rank_best_first_with_failures_and_missing_values_last():
    rows = [{"trial": 0, "status": "ok", "val_reward": 0.4},
            {"trial": 1, "status": "error", "val_reward": None, "error": "boom"},
            {"trial": 2, "status": "ok", "val_reward": 0.9},
            {"trial": 3, "status": "ok", "val_reward": float("nan")},
            {"trial": 4, "status": "ok", "val_reward": 0.4}]
    assert [r["trial"] for r in rank_rows(rows)] == [2, 0, 4, 3, 1]
    assert [r["trial"] for r in rank_rows(rows, mode="min")] == [0, 4, 2, 3, 1]
    assert [r["rank"] for r in rank_rows(rows)] == [1, 2, 3, 4, 5]


def test_sweep_result_table_csv_and_json():
    rows = [{"trial": 0, "status": "ok", "val_reward": 0.25, "lm_calls": 10, "a.b": 1,
             "best_program_path": "/x/t0/best_program.json"},
            {"trial": 1, "status": "ok", "val_reward": 0.75, "lm_calls": 12, "a.b": [2, 3],
             "best_program_path": "/x/t1/best_program.json"}]
    result = SweepResult("demo", "/x", "val_reward", "max", ["a.b"], rows)
    assert result.best_program_path == "/x/t1/best_program.json"
    lines = result.to_csv().splitlines()
    assert lines[0].startswith("rank,trial,status,val_reward,reward,")
    assert "a.b" in lines[0].split(",")
    assert lines[1].startswith("1,1,ok,0.75,") and '"[2, 3]"' in lines[1]
    data = json.loads(result.to_json())
    assert [r["trial"] for r in data["rows"]] == [1, 0]
    assert data["best_program_path"] == "/x/t1/best_program.json"
    table = result.format_table()
    assert table.splitlines()[1].split()[:4] == ["1", "1", "ok", "0.7500"]
    assert "error" not in table.splitlines()[0]
    assert SweepResult("none", "/x", "val_reward", "max", [], [
        {"trial": 0, "status": "error", "error": "boom"}]).best_program_path is None


def test_tune_reporter_carries_the_last_val_reward_forward():
    sent = []
    reporter = TuneReporter(report=sent.append)
    reporter.on_batch_end(1, {"generation": 1, "reward": 0.5, "lm_calls": 4,
                              "best_candidate": "abc", "population_reward": None})
    reporter.on_epoch_end(0, {"generation": 1, "val_reward": 0.6, "lm_calls": 9})
    reporter.on_batch_end(2, {"generation": 2, "reward": 0.7, "lm_calls": 13})
    assert sent[0] == {"generation": 1, "reward": 0.5, "lm_calls": 4}
    assert sent[1]["val_reward"] == 0.6
    assert sent[2] == {"generation": 2, "reward": 0.7, "lm_calls": 13, "val_reward": 0.6}


def test_cli_dry_run_lists_the_trials(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep_config(tmp_path, GRID), sort_keys=False))
    assert main(["sweep", str(path), "--dry-run", "--name", "dry"]) == 0
    out = capsys.readouterr().out
    assert "4 trials (grid)" in out
    assert "t003  program.args.skill=0.75, optimizer.population_size=2" in out
    assert not (tmp_path / "runs" / "dry").exists()


def test_cli_dry_run_as_json_is_one_plan_object(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep_config(tmp_path, GRID), sort_keys=False))
    assert main(["sweep", str(path), "--dry-run", "--name", "dry", "--log-format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["event"] == "plan" and plan["name"] == "dry" and plan["method"] == "grid"
    assert plan["trials"][3] == {"program.args.skill": 0.75, "optimizer.population_size": 2}


def test_cli_bad_sweep_field_is_one_line_naming_the_key(tmp_path, capsys):
    config = sweep_config(tmp_path, {"optimizer.population_size": {"valuez": [1]}})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["sweep", str(path), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "sweep.parameters['optimizer.population_size'].valuez: unknown field" in err


class _FakeResult:
    def __init__(self, trial, metrics, error=None):
        self.config, self.metrics, self.error = {"trial": trial}, metrics, error


def test_rows_from_tune_results_keep_failures_with_their_error(tmp_path):
    from synaray.sweeps.runner import _row

    plan = plan_sweep(sweep_config(tmp_path, GRID), name="rows")
    ok = _row(plan, _FakeResult(2, {"val_reward": 0.5, "reward": 0.6, "lm_calls": 7,
                                    "lm_failures": 1, "generations": 2, "fit_time_s": 1.5,
                                    "run_name": "rows-t002", "best_program_path": "/p.json",
                                    "time_total_s": 9.0}))
    assert ok == {"trial": 2, "status": "ok", "val_reward": 0.5, "reward": 0.6,
                  "test_reward": None, "lm_calls": 7, "lm_failures": 1, "generations": 2,
                  "time_s": 1.5,
                  "program.args.skill": 0.75, "optimizer.population_size": 1,
                  "run_name": "rows-t002", "best_program_path": "/p.json", "error": None}
    error = RuntimeError("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                         "ray.exceptions.RayTaskError(DataError): ray::run_trial()\n"
                         "synaray.errors.DataError: train.jsonl, line 3: not valid JSON")
    failed = _row(plan, _FakeResult(1, {"reward": 0.2, "lm_calls": 3}, error))
    assert failed["status"] == "error" and failed["run_name"] == "rows-t001"
    assert failed["error"] == "synaray.errors.DataError: train.jsonl, line 3: not valid JSON"
    assert _row(plan, _FakeResult(0, {"reward": 0.2}))["status"] == "incomplete"
