"""A 4-trial grid sweep through Ray Tune on the session's Ray cluster (FakeLanguageModel)."""

import json

import pytest

import synaray
from helpers.sweep_program import sweep_config
from synaray.sweeps import sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(300)]


def test_grid_sweep_ranks_four_runs_and_keeps_the_best_program(ray_cluster, tmp_path):
    config = sweep_config(tmp_path, {"program.args.skill": {"values": [0.25, 0.75]},
                                     "optimizer.population_size": {"values": [1, 2]}})
    result = sweep(config, storage=str(tmp_path / "sweeps"), name="grid4", verbose=False)

    assert len(result.rows) == 4
    assert [r["status"] for r in result.rows] == ["ok"] * 4, result.rows
    rewards = [r["val_reward"] for r in result.rows]
    assert rewards == sorted(rewards, reverse=True)
    assert [r["program.args.skill"] for r in result.rows] == [0.75, 0.75, 0.25, 0.25]
    assert {r["trial"] for r in result.rows} == {0, 1, 2, 3}
    assert all(r["lm_calls"] > 0 and r["generations"] >= 1 for r in result.rows)

    best = result.best
    assert best["rank"] == 1 and best["run_name"] == f"grid4-t{best['trial']:03d}"
    program = synaray.Program.load(result.best_program_path)
    assert "skill=0.75" in json.dumps(program.get_state())

    root = tmp_path / "sweeps" / "grid4"
    assert result.files == {"csv": str(root / "results.csv"),
                            "json": str(root / "results.json")}
    lines = (root / "results.csv").read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("rank,trial,status,val_reward")
    saved = json.loads((root / "results.json").read_text())
    assert [r["trial"] for r in saved["rows"]] == [r["trial"] for r in result.rows]
    # Tune kept each trial's reports: one per generation, then the final one
    progress = (root / f"t{best['trial']:03d}" / "progress.csv").read_text().splitlines()
    assert len(progress) - 1 >= best["generations"] + 1
