"""`synaray fit`, `resume` and `evaluate` through `synaray.cli.main.main([...])`.

The program comes from a config's `builder` (`helpers.fit_programs`), answered by a
FakeLanguageModel: no server, deterministic. Ray tests use the session's local cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import synaray
from helpers.fit_programs import thirds_config
from synaray.callbacks import Callback
from synaray.cli.main import main
from synaray.config import load_run_config, run_fit


class Crash(Exception):
    """Stands for a driver killed mid-run."""


class CrashAfter(Callback):
    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation
        self.seen: list[int] = []

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        self.seen.append(step)
        if step == self.generation:
            raise Crash(f"stopped after generation {step}")


def write_config(folder: Path, **kwargs: object) -> Path:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(thirds_config(folder, **kwargs)))
    return path


def run_folder(folder: Path, name: str) -> Path:
    return folder / "runs" / name


# --- fit ----------------------------------------------------------------------------------------
def test_fit_writes_a_loadable_best_program_and_the_run_config(tmp_path, capsys) -> None:
    config = write_config(tmp_path)
    assert main(["fit", str(config), "--run-name", "r1", "--set", "training.epochs=1"]) == 0
    out = capsys.readouterr().out
    folder = run_folder(tmp_path, "r1")
    best = folder / "best_program.json"
    assert f"best program: {best}" in out
    assert "validation" in out and "test" in out and "accuracy" in out
    program = synaray.Program.load(best)
    assert program.get_state()["generator"]["examples"]  # few-shot examples were found
    saved = json.loads((folder / "run_config.json").read_text())
    assert saved["run_name"] == "r1" and saved["storage"] == str(tmp_path / "runs")
    assert saved["training"]["epochs"] == 1  # the override is in the resolved config
    for name in ("optimizer_state.json", "status.json", "manifest.json", "outcome.json",
                 "data/train.parquet", "data/val.parquet"):
        assert (folder / name).is_file(), name
    outcome = json.loads((folder / "outcome.json").read_text())
    assert outcome["val_reward"] == 1.0 and outcome["test_reward"] == 1.0
    assert outcome["val_metrics"] == outcome["test_metrics"] == {"accuracy": 1.0}
    status = json.loads((folder / "status.json").read_text())
    assert status["generation"] == status["total_generations"] == 4


def test_fit_refuses_an_existing_run_name(tmp_path, capsys) -> None:
    config = write_config(tmp_path, epochs=1)
    assert main(["fit", str(config), "--run-name", "same", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["fit", str(config), "--run-name", "same", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Run 'same' already exists" in err and "synaray resume same --storage" in err


def test_fit_reports_a_bad_config_on_one_line(tmp_path, capsys) -> None:
    config = write_config(tmp_path)
    assert main(["fit", str(config), "--set", "optimizer.population_sise=3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("synaray fit: error: ")
    assert "optimizer.population_sise: unknown setting" in err
    assert "Did you mean 'population_size'?" in err


def test_a_data_error_leaves_no_run_folder_behind(tmp_path, capsys) -> None:
    config = write_config(tmp_path)
    with (tmp_path / "train.jsonl").open("a") as handle:
        handle.write("{not json\n")
    assert main(["fit", str(config), "--run-name", "bad-data", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("synaray fit: error: ") and "train.jsonl" in err
    assert not run_folder(tmp_path, "bad-data").exists()
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # nothing written


def test_fit_resolves_relative_storage_to_an_absolute_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_run_config(write_config(tmp_path, epochs=1),
                             {"storage": "rel_runs", "run_name": "rel"})
    outcome = run_fit(config, verbose=False)
    assert outcome.storage == str(tmp_path / "rel_runs")
    assert Path(outcome.best_program_path).is_file()


def test_run_fit_passes_callbacks_to_program_fit(tmp_path) -> None:
    seen = []

    class Record(Callback):
        def on_batch_end(self, step, logs=None):
            seen.append((step, logs["reward"]))

    config = load_run_config(write_config(tmp_path, epochs=1), {"run_name": "cb"})
    outcome = run_fit(config, callbacks=[Record()], verbose=False)
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    assert outcome.generations == 4 and outcome.lm_calls > 0
    assert outcome.history["val_reward"] == [outcome.val_reward]


# --- resume -------------------------------------------------------------------------------------
def _reference(tmp_path: Path, engine: str) -> dict:
    folder = tmp_path / "reference"
    folder.mkdir()
    config = load_run_config(write_config(folder, engine=engine), {"run_name": "ref"})
    return run_fit(config, verbose=False).to_dict()


def _crash_then_resume(tmp_path: Path, engine: str, capsys) -> dict:
    config_file = write_config(tmp_path, engine=engine)
    config = load_run_config(config_file, {"run_name": "stop"})
    crash = CrashAfter(generation=5)
    with pytest.raises(Crash):
        run_fit(config, callbacks=[crash], verbose=False)
    assert crash.seen == [1, 2, 3, 4, 5]
    status = json.loads((run_folder(tmp_path, "stop") / "status.json").read_text())
    if engine == "local":
        assert status["generation"] == 5 and status["stop_reason"] is None
    else:  # the optimizer actor runs the search ahead of the driver's callbacks; the
        # driver's error stops it after the step it is in ("failed" unless it finished)
        assert status["generation"] >= 5
        assert status["state"] == ("finished" if status["stop_reason"] else "failed")
    capsys.readouterr()
    # the stored config names the test's builder: trusted as the config file names it too
    assert main(["resume", "stop", "--storage", str(tmp_path / "runs"),
                 "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "resuming stop from" in out and "best program:" in out
    return json.loads((run_folder(tmp_path, "stop") / "outcome.json").read_text())


def test_resume_continues_a_local_run_without_redoing_evaluations(tmp_path, capsys) -> None:
    reference = _reference(tmp_path, "local")
    resumed = _crash_then_resume(tmp_path, "local", capsys)
    assert resumed["generations"] == reference["generations"] == 8
    assert resumed["lm_calls"] == reference["lm_calls"]  # nothing scored twice
    assert resumed["val_reward"] == reference["val_reward"]
    # the resumed process logs the epoch it finished: the reference's last one
    assert resumed["history"] == {k: v[-1:] for k, v in reference["history"].items()}


def test_resume_of_an_unknown_run(tmp_path, capsys) -> None:
    assert main(["resume", "nope", "--storage", str(tmp_path)]) == 1
    assert "No run 'nope' in" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
def test_fit_and_resume_on_ray(tmp_path, capsys) -> None:
    reference = _reference(tmp_path, "ray")
    resumed = _crash_then_resume(tmp_path, "ray", capsys)
    assert resumed["generations"] == reference["generations"] == 8
    assert resumed["lm_calls"] == reference["lm_calls"]
    assert resumed["val_reward"] == reference["val_reward"] == 1.0
    program = synaray.Program.load(run_folder(tmp_path, "stop") / "best_program.json")
    reference_program = synaray.Program.load(
        tmp_path / "reference" / "runs" / "ref" / "best_program.json")
    assert program.get_state() == reference_program.get_state()


# --- evaluate ----------------------------------------------------------------------------------
@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
def test_evaluate_a_saved_program_and_a_runs_top_k(tmp_path, capsys) -> None:
    config = write_config(tmp_path, epochs=1)
    assert main(["fit", str(config), "--run-name", "ev", "--quiet"]) == 0
    best = run_folder(tmp_path, "ev") / "best_program.json"
    out = tmp_path / "results"
    capsys.readouterr()
    assert main(["evaluate", "--program", str(best), "--data", str(tmp_path / "test.jsonl"),
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = pq.read_table(sorted(out.glob("part-*.parquet"))).to_pylist()
    assert len(rows) == 9 and {r["program_id"] for r in rows} == {"best_program"}
    assert all(r["reward"] == 1.0 and r["prediction"] for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward"] == 1.0 and summary["rows"] == 9
    assert "best_program" in printed and "accuracy" in printed and str(out) in printed

    top = tmp_path / "top"
    assert main(["evaluate", "--run", "ev", "--storage", str(tmp_path / "runs"), "--top-k",
                 "2", "--data", str(tmp_path / "val.jsonl"), "--out", str(top),
                 "--input-field", "q=q", "--quiet"]) == 0
    rows = pq.read_table(sorted(top.glob("part-*.parquet"))).to_pylist()
    assert len({r["program_id"] for r in rows}) == 2 and len(rows) == 18


def test_evaluate_argument_errors(tmp_path, capsys) -> None:
    assert main(["evaluate", "--run", "x", "--data", "d.parquet", "--out", "o"]) == 1
    assert "--run needs --storage" in capsys.readouterr().err
    assert main(["evaluate", "--program", "p.json", "--top-k", "2", "--data", "d.parquet",
                 "--out", "o"]) == 1
    assert "--top-k needs --run" in capsys.readouterr().err
    assert main(["evaluate", "--program", "p.json", "--data", "d.parquet", "--out", "o",
                 "--input-field", "question"]) == 1
    assert "expected COLUMN=FIELD" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
def test_joining_a_cluster_with_relative_storage_warns(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_run_config(write_config(tmp_path, engine="ray", epochs=1),
                             {"storage": "rel_runs", "run_name": "rel-ray"})
    with pytest.warns(UserWarning, match="relative path.*ray job submit"):
        outcome = run_fit(config, verbose=False)
    assert outcome.storage == str(tmp_path / "rel_runs")
    assert synaray.Program.load(outcome.best_program_path).name == "thirds"


@pytest.mark.ray
def test_fit_detach_returns_and_status_watch_follows_the_run_to_its_end(
        ray_cluster, tmp_path, capsys) -> None:
    import ray

    config_file = write_config(tmp_path, engine="ray", epochs=1)
    assert main(["fit", str(config_file), "--address", ray_cluster.address, "--detach",
                 "--run-name", "bg", "--quiet"]) == 0
    out = capsys.readouterr().out
    storage = str(tmp_path / "runs")
    assert f"synaray status bg --storage {storage} --watch" in out
    assert not (run_folder(tmp_path, "bg") / "outcome.json").exists()  # not waited for
    code = main(["status", "bg", "--storage", storage, "--watch", "--interval", "0.1"])
    out = capsys.readouterr().out
    try:  # a finished run's actor ends itself a while after its last follower
        ray.kill(ray.get_actor("synaray-optimizer-bg", namespace="synaray"), no_restart=True)
    except ValueError:
        pass
    assert code == 0 and "state        finished" in out
    assert synaray.Program.load(run_folder(tmp_path, "bg") / "best_program.json").get_state()
