"""`examples/sweep_sports.yaml` on the real local model: 4 trials through Ray Tune.

Shrunk further with overrides (4 training / 4 validation statements, one generation per
trial) so that it takes a couple of minutes on 2 busy cores. The same sweep at the example's
own size: `synaray sweep examples/sweep_sports.yaml` (about 4 minutes on 2 cores).
"""

from pathlib import Path

import pytest

import synaray
from synaray.sweeps import sweep

pytestmark = [pytest.mark.llm, pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLE = Path(__file__).parents[2] / "examples" / "sweep_sports.yaml"


def test_sports_sweep_on_the_local_model(local_lm_server, ray_cluster, tmp_path):
    result = sweep(EXAMPLE, storage=str(tmp_path), name="sports", max_concurrent_trials=2,
                   overrides={"task.n_train": 4, "task.n_val": 4, "training.batch_size": 4},
                   verbose=False)
    print("\n" + result.format_table())
    assert len(result.rows) == 4
    assert [r["status"] for r in result.rows] == ["ok"] * 4, result.rows
    rewards = [r["val_reward"] for r in result.rows]
    assert rewards == sorted(rewards, reverse=True)
    assert {(r["model.temperature"], r["optimizer.nb_max_examples"]) for r in result.rows} \
        == {(0.0, 1), (0.0, 3), (0.7, 1), (0.7, 3)}
    assert all(r["lm_calls"] > 0 for r in result.rows)
    assert synaray.Program.load(result.best_program_path).name == "sports_understanding"
    assert (tmp_path / "sports" / "results.csv").exists()
