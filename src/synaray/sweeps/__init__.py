"""Sweeps: one whole optimization run per setting (models, temperatures, optimizer
settings), run as Ray Tune trials and ranked by validation reward.

A sweep file is a run config plus a `sweep:` section::

    task: {name: sports_understanding, n_train: 20, n_val: 20}
    model: local/smollm2-135m
    optimizer: {name: random_few_shot, population_size: 2}
    sweep:
      method: grid
      parameters:
        model.temperature: {values: [0.0, 0.8]}
        optimizer.population_size: {values: [2, 3]}

Run it with `synaray sweep FILE` or from Python:

Example:
    >>> from synaray.sweeps import sweep  # doctest: +SKIP
    >>> result = sweep("examples/sweep_sports.yaml")  # doctest: +SKIP
    >>> result.best_program_path  # doctest: +SKIP
    '/home/me/synaray_runs/sweep_sports-.../runs/sweep_sports-...-t002/best_program.json'

Ray (and Tune) are imported only when a sweep runs.
"""

from synaray.sweeps.results import SweepResult, rank_rows
from synaray.sweeps.runner import SweepPlan, plan_sweep, run_plan, run_trial, sweep
from synaray.sweeps.spec import SweepParameter, SweepSpec, expand_trials, parse_sweep_spec
from synaray.sweeps.tune_reporter import TuneReporter

__all__ = [
    "SweepParameter",
    "SweepPlan",
    "SweepResult",
    "SweepSpec",
    "TuneReporter",
    "expand_trials",
    "parse_sweep_spec",
    "plan_sweep",
    "rank_rows",
    "run_plan",
    "run_trial",
    "sweep",
]
