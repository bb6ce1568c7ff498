"""`synaray sweep CONFIG`: one optimization run per setting, as Ray Tune trials.

    synaray sweep examples/sweep_sports.yaml
    synaray sweep examples/sweep_sports.yaml --storage "$PWD/sweeps" --max-concurrent-trials 2
    ray job submit --working-dir . -- synaray sweep examples/sweep_sports.yaml \\
        --address auto --storage s3://bucket/sweeps

CONFIG is a run config plus a `sweep:` section (`synaray.sweeps.spec`). The command prints
the trials ranked by validation reward, writes them to `<storage>/<name>/results.csv` and
`results.json`, and prints the best run's program path. Ray is imported only when it runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from synaray.cli.main import add_log_format_argument, command, json_output, positive_int

if TYPE_CHECKING:
    from synaray.sweeps import SweepPlan

__all__ = ["sweep_command"]


_SWEEP_EPILOG = """\
the sweep section:
  sweep:
    method: grid              # grid | random (random needs num_samples)
    metric: val_reward        # ranks the trials (mode: max)
    parameters:               # dotted run-config keys
      model.temperature: {values: [0.0, 0.7]}
      optimizer.population_size: {grid: [2, 4]}
      # also {choice: [...]} and {uniform: [lo, hi]} (random sweeps)

examples:
  synaray sweep examples/sweep_sports.yaml
  synaray sweep examples/sweep_sports.yaml --set task.n_train=10 --name quick
  ray job submit --working-dir . -- synaray sweep examples/sweep_sports.yaml \\
      --address auto --storage s3://bucket/sweeps

Each trial is one whole run (the local engine inside a Ray Tune trial of 1 CPU).
Results: <storage>/<name>/results.csv and results.json; each trial's run (and
best_program.json) in <storage>/<name>/runs/."""


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG",
                        help="a run config with a `sweep:` section (.yaml, .toml or .json)")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster ('auto' under `ray job submit`, or "
                             "host:port); default: start one on this machine")
    parser.add_argument("--storage", default=None,
                        help="where the sweep is kept: a folder or a URI such as "
                             "s3://bucket/prefix (default: the config's storage, else "
                             "./synaray_runs)")
    parser.add_argument("--max-concurrent-trials", type=positive_int, default=None,
                        metavar="N", help="trials run at once (default: as many as the "
                                          "cluster's CPUs allow)")
    parser.add_argument("--name", default=None,
                        help="the sweep's name (default: sweep.name, else the file name "
                             "and the time)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="set a config key in every trial, e.g. --set task.n_train=10 "
                             "(read as YAML; not a swept key; repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the sweep and list its trials without running them")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the results table")
    add_log_format_argument(parser)
    parser.add_argument("--no-preflight", action="store_true",
                        help="skip the check that sends each model one cheap request before "
                             "the trials start (and in each trial)")


def _print_plan(plan: SweepPlan) -> None:
    print(f"sweep {plan.name}: {len(plan.trials)} trials ({plan.spec.method}), "
          f"results in {plan.root}")
    for index, trial in enumerate(plan.trials):
        settings = ", ".join(f"{k}={v!r}" for k, v in trial.items())
        print(f"  t{index:03d}  {settings}")


def _run_with_json_lines(plan: SweepPlan, args: argparse.Namespace) -> int:
    """`--log-format json`: the plan and the ranked results as one JSON object each (Ray
    Tune's own text table is not printed)."""
    import json

    from synaray.sweeps import run_plan
    from synaray.utils.progress import log_event

    log_event("plan", {"name": plan.name, "method": plan.spec.method, "root": plan.root,
                       "trials": list(plan.trials)})
    if args.dry_run:
        return 0
    _preflight(plan)
    result = run_plan(plan, address=args.address,
                      max_concurrent_trials=args.max_concurrent_trials, verbose=False)
    log_event("summary", {**json.loads(result.to_json()), "files": result.files})
    return 0 if result.best is not None else 1


def _preflight(plan: SweepPlan) -> None:
    """One cheap request per distinct model section of the trials, before any trial."""
    import asyncio

    from synaray.config.components import build_language_model
    from synaray.lm.preflight import preflight, preflight_enabled

    models = [build_language_model(c.model, c.source) for c in plan.configs
              if c.model is not None and preflight_enabled(c.training.preflight)]
    if models:
        asyncio.run(preflight(models))


@command("sweep", arguments=_sweep_arguments, epilog=_SWEEP_EPILOG,
         help="Run one optimization per setting of a sweep (Ray Tune) and rank them by "
              "validation reward.")
def sweep_command(args: argparse.Namespace) -> int:
    """Plan the sweep (every trial's config checked), run it, print the ranked table."""
    from synaray.config import parse_override
    from synaray.sweeps import plan_sweep, run_plan

    overrides = dict(parse_override(text) for text in args.overrides)
    if args.no_preflight:
        overrides["training.preflight"] = False
    plan = plan_sweep(args.config, storage=args.storage, name=args.name, overrides=overrides)
    if json_output(args):
        return _run_with_json_lines(plan, args)
    if args.dry_run or not args.quiet:
        _print_plan(plan)
    if args.dry_run:
        return 0
    _preflight(plan)
    result = run_plan(plan, address=args.address,
                      max_concurrent_trials=args.max_concurrent_trials, verbose=not args.quiet)
    print()
    print(result.format_table())
    print(f"\nresults:      {result.files.get('csv')}\n              {result.files.get('json')}")
    calls = sum(int(row.get("lm_calls") or 0) for row in result.rows)
    lm_failures = sum(int(row.get("lm_failures") or 0) for row in result.rows)
    print(f"LM calls:     {calls} ({lm_failures} failed)")
    failed = sum(1 for row in result.rows if row.get("status") != "ok")
    if failed:
        print(f"failed:       {failed} of {len(result.rows)} trials (see the error column)")
    if result.best is None:
        print("best program: none (no trial finished with a "
              f"{result.metric})", flush=True)
        return 1
    print(f"best program: {result.best_program_path}\n"
          f"best trial:   t{result.best['trial']:03d} {result.metric}="
          f"{result.best[result.metric]:.4f}", flush=True)
    return 0
