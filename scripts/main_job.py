"""The main job: optimize a real task on the local model, on a local Ray cluster.

Starts the bundled SmolLM2-135M llama.cpp server, builds a one-Generator program for a
built-in task, scores it zero-shot on held-out test examples, optimizes it (PopulationSearch
by default) on RayEngine, scores the optimized program on the same test examples, and
prints both with LM calls and time, and where the best program was saved.

    python scripts/main_job.py                       # intent_recognition, RayEngine
    python scripts/main_job.py --task object_counting --engine local
    python scripts/main_job.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import synaray
from synaray import datasets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", default="intent_recognition", choices=sorted(datasets.TASKS))
    p.add_argument("--n-train", type=int, default=100)
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--optimizer", default="population_search",
                   choices=["population_search", "random_few_shot", "omega"])
    p.add_argument("--population-size", type=int, default=4)
    p.add_argument("--reflection-probability", type=float, default=0.1,
                   help="PopulationSearch: share of children whose instruction the LM rewrites")
    p.add_argument("--nb-min-examples", type=int, default=5,
                   help="fewest few-shot examples in a candidate")
    p.add_argument("--nb-max-examples", type=int, default=8,
                   help="most few-shot examples in a candidate")
    p.add_argument("--promote-k", type=int, default=1,
                   help="PopulationSearch: leaders scored on validation after each generation")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="ray", choices=["ray", "local"])
    p.add_argument("--num-evaluators", type=int, default=2)
    p.add_argument("--max-concurrency", type=int, default=4,
                   help="LM calls in flight per evaluator (the local server answers one at a time)")
    p.add_argument("--storage", default=str(Path("synaray_runs").resolve()))
    p.add_argument("--run-name", default=None)
    p.add_argument("--cache", action="store_true", help="use the LM response cache")
    return p.parse_args(argv)


async def build_program(task: datasets.TaskSpec, lm: synaray.LanguageModel) -> synaray.Program:
    inputs = synaray.Input(data_model=task.input_data_model)
    outputs = await synaray.Generator(data_model=task.output_data_model, language_model=lm,
                                      instructions=task.instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name=task.name,
                           description=task.instructions)


def make_optimizer(args: argparse.Namespace, lm: synaray.LanguageModel):
    opts = synaray.optimizers
    shots = {"nb_min_examples": args.nb_min_examples, "nb_max_examples": args.nb_max_examples}
    if args.optimizer == "random_few_shot":
        return opts.RandomFewShot(population_size=args.population_size, seed=args.seed, **shots)
    if args.optimizer == "omega":
        return opts.OMEGA(language_model=lm, population_size=args.population_size,
                          seed=args.seed)
    return opts.PopulationSearch(language_model=lm, population_size=args.population_size,
                                 reflection_probability=args.reflection_probability,
                                 promote_k=args.promote_k, seed=args.seed, **shots)


def make_engine(args: argparse.Namespace, run_name: str):
    if args.engine == "local":
        return synaray.engines.LocalEngine(max_concurrency=args.max_concurrency)
    from synaray.engines.ray import RayEngine

    return RayEngine(num_evaluators=args.num_evaluators, max_concurrency=args.max_concurrency,
                     storage=args.storage, run_name=run_name)


def start_ray(args: argparse.Namespace) -> None:
    if args.engine != "ray":
        return
    import ray

    from synaray.runs.ray_connect import NAMESPACE, worker_runtime_env

    ray.init(address="local", namespace=NAMESPACE, runtime_env=worker_runtime_env(),
             include_dashboard=False,
             log_to_driver=False)
    print(f"local Ray cluster: {ray.cluster_resources().get('CPU', 0):.0f} CPUs", flush=True)


def row(label: str, result: dict) -> str:
    return (f"{label:<22} {result['reward']:>7.3f} {result['lm_calls']:>9d} "
            f"{result['failures']:>9d} {result['time_s']:>9.1f}")


async def run(args: argparse.Namespace) -> int:
    from synaray.lm.local.server import local_lm_server

    task = datasets.get_task(args.task)
    train, val, test = datasets.load_task(args.task, args.n_train, args.n_val, args.n_test)
    run_name = args.run_name or f"{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    with local_lm_server() as server:
        os.environ["SYNARAY_LOCAL_LM_API_BASE"] = server.api_base
        print(f"local model: {server.model} at {server.api_base}", flush=True)
        start_ray(args)
        lm = synaray.LanguageModel(model="local/smollm2-135m", cache=args.cache)
        program = await build_program(task, lm)
        program.compile(reward=task.reward, optimizer=make_optimizer(args, lm),
                        metrics=["accuracy"] if task.reward == "exact_match" else ["f1_score"])
        zero = await program.evaluate(test, engine=make_engine(args, run_name + "-zero"))
        started = time.monotonic()
        engine = make_engine(args, run_name)
        history = await program.fit(train, validation_data=val, epochs=args.epochs,
                                    batch_size=args.batch_size, engine=engine)
        fit_s = time.monotonic() - started
        best = await program.evaluate(test, engine=make_engine(args, run_name + "-test"))
    saved = (engine.best_program_uri if args.engine == "ray"
             else str(Path(args.storage) / run_name / "best_program.json"))
    if args.engine == "local":
        program.save(saved)
    print(f"\n{args.task}: {args.n_train} train / {args.n_val} validation / {args.n_test} test, "
          f"{args.optimizer}, engine={args.engine}")
    print(f"{'program (test set)':<22} {'reward':>7} {'lm_calls':>9} {'failures':>9} {'time_s':>9}")
    print(row("zero-shot", zero))
    print(row("optimized", best))
    print(f"\noptimization: {len(history.generations)} generations, "
          f"val_reward {history.history['val_reward'][-1]:.3f}, "
          f"{history.generations[-1]['lm_calls']} LM calls, "
          f"{fit_s:.0f} s")
    print(f"improvement on test: {best['reward'] - zero['reward']:+.3f}")
    print(f"best program: {saved}")
    print(program.get_state())
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
