"""Bench: synaray's optimizers against DSPy's BootstrapFewShotWithRandomSearch, MIPROv2, GEPA.

Every method gets the same local model server (SmolLM2-135M through llama.cpp, greedy), the
same seeded train / validation / test split, the same metric (synaray's reward function:
exact match, or SQuAD F1 for squad) and the same budget of search LM calls (`--budget`,
several allowed). For each task, budget and method it prints zero-shot and optimized test
score, the search LM calls each library counted itself, and the search wall time; then the
averages per method and budget. Rows are appended to `--out` (JSON lines) as they finish,
so an interrupted run keeps what it measured.

DSPy runs its task program through a plain question/answer adapter (see dspy_methods.py):
its default adapters cannot parse this model's answers.

One command from a fresh clone (creates .venv and the separate bench virtualenv):

    bash scripts/bench/run_vs_baselines.sh                               # 5 tasks x 2 budgets
    bash scripts/bench/run_vs_baselines.sh --tasks intent_recognition --budget 150 \\
        --methods synaray,dspy-bfrs --n-test 100                         # a slice
    bash scripts/bench/run_vs_baselines.sh --task-file my.jsonl --input-field question \\
        --target-field answer

Or directly, with a Python that has synaray and the `bench` extra (dspy, gepa):

    python scripts/bench/vs_baselines.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch: no network here

from bench_tasks import BenchTask, load_bench_task, load_jsonl_task

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai/smollm2-135m"
ALL_TASKS = ["intent_recognition", "sports_understanding", "object_counting", "word_sorting",
             "squad"]
DEFAULT_METHODS = ["synaray-auto", "synaray", "dspy-bfrs", "dspy-mipro", "dspy-gepa"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", default=",".join(ALL_TASKS),
                   help="comma-separated built-in tasks (ignored with --task-file)")
    p.add_argument("--task-file", default=None, help="a JSONL file: one example per line")
    p.add_argument("--input-field", action="append", default=None,
                   help="--task-file: an input column (repeat for several; a list, e.g. "
                        "BIG-bench choices, is shown one item per line)")
    p.add_argument("--target-field", default=None,
                   help="--task-file: the answer column (a list of accepted answers: any of "
                        "them scores, demos show the first; a choice -> score mapping such "
                        "as target_scores: the best choice)")
    p.add_argument("--instructions", default=None, help="--task-file: the task's instruction")
    p.add_argument("--reward", default="exact_match", choices=["exact_match", "f1_score"],
                   help="--task-file: the metric")
    p.add_argument("--closed-set", default="auto", choices=["auto", "on", "off"],
                   help="--task-file: answers as a Literal of the distinct targets (auto: "
                        "when there are at most 12)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="comma-separated: synaray-auto (synaray's default), synaray (the main "
                        "job's settings), synaray-surrogate, synaray-rfs, dspy-bfrs, "
                        "dspy-mipro, dspy-gepa")
    p.add_argument("--budget", type=int, action="append", default=None,
                   help="search LM calls per method (repeat for several; default 150 and 600)")
    p.add_argument("--n-train", type=int, default=30)
    p.add_argument("--n-val", type=int, default=30)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--split-seed", type=int, default=0, help="seed of the shuffle before the split")
    p.add_argument("--seed", type=int, default=0, help="seed of every optimizer")
    p.add_argument("--concurrency", type=int, default=2,
                   help="LM calls in flight per method (the server answers one at a time)")
    p.add_argument("--api-base", default=os.environ.get("SYNARAY_LOCAL_LM_API_BASE"),
                   help="reuse a running local model server (default: start one)")
    p.add_argument("--server-python", default=None,
                   help="the Python (with synaray[local]) that runs the server; default: "
                        "$SYNARAY_VENV or .venv of the repository")
    p.add_argument("--server-threads", type=int, default=1,
                   help="llama.cpp threads; on a busy machine 1 is faster and steadier than 2")
    p.add_argument("--out", default=None, help="JSON lines of results (default: "
                   "results/vs_baselines-<time>.jsonl)")
    p.add_argument("--report", nargs="+", default=None, metavar="JSONL",
                   help="run nothing: print the table and the issue's checks from result "
                        "files of earlier runs (the last row of each task/budget/method wins)")
    args = p.parse_args(argv)
    args.budget = args.budget or [150, 600]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.task_file and (not args.input_field or not args.target_field):
        p.error("--task-file needs --input-field (one or more) and --target-field")
    return args


def load_tasks(args: argparse.Namespace) -> list[BenchTask]:
    sizes = (args.n_train, args.n_val, args.n_test)
    if args.task_file:
        fields = [f for value in args.input_field for f in value.split(",") if f]
        return [load_jsonl_task(args.task_file, fields, args.target_field, *sizes,
                                seed=args.split_seed, instructions=args.instructions,
                                reward=args.reward, closed_set=args.closed_set)]
    return [load_bench_task(name.strip(), *sizes, seed=args.split_seed)
            for name in args.tasks.split(",") if name.strip()]


# --- the local model server ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(api_base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_base}/models", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# The bench's own server: not recorded for the machine's other processes (as `synaray
# serve-local-lm` would), so nothing else shares it and its calls are the bench's alone.
_SERVE = """
import signal, sys
from synaray.lm.local.server import start_local_lm_server
stop = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait, not the default handler
server = start_local_lm_server(port=int(sys.argv[1]), n_threads=int(sys.argv[2]), record=False)
try:
    signal.sigwait(stop)
finally:
    server.stop()
"""


@contextlib.contextmanager
def model_server(args: argparse.Namespace) -> Iterator[str]:
    """The api_base of the server to use: `--api-base`, or one started (and stopped) here."""
    if args.api_base:
        if not _answers(args.api_base):
            raise SystemExit(f"error: --api-base {args.api_base}: no server answers there")
        yield args.api_base.rstrip("/")
        return
    venv = Path(os.environ.get("SYNARAY_VENV", ROOT / ".venv"))
    python = args.server_python or str(venv / "bin" / "python")
    port = _free_port()
    command = [python, "-c", _SERVE, str(port), str(args.server_threads)]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"vs-baselines-server-{port}.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    api_base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while not _answers(api_base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"error: the local model server ({' '.join(command)}) did "
                                 f"not start; see {log.name}")
            time.sleep(1)
        print(f"local model server: {api_base} (pid {process.pid})", flush=True)
        yield api_base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# --- running the methods ------------------------------------------------------------------
def run_one(method: str, task: BenchTask, budget: int, api_base: str, args: argparse.Namespace,
            zero_cache: dict) -> dict:
    library = "dspy" if method.startswith("dspy") else "synaray"
    key = (library, task.name)
    started = time.monotonic()
    try:
        if library == "dspy":
            from dspy_methods import run_dspy_method

            row = run_dspy_method(method, task, budget, api_base, MODEL, args.concurrency,
                                  args.seed, zero_cache.get(key))
        else:
            from synaray_methods import run_synaray_method

            row = asyncio.run(run_synaray_method(method, task, budget, api_base, MODEL,
                                                 args.concurrency, args.seed,
                                                 zero_cache.get(key)))
    except Exception as exc:  # one failed method must not lose the others' figures
        traceback.print_exc()
        return {"task": task.name, "budget": budget, "method": method,
                "error": f"{type(exc).__name__}: {exc}", "wall_s": time.monotonic() - started}
    zero_cache[key] = row.pop("_zero_shot")
    row.update(task=task.name, budget=budget, wall_s=time.monotonic() - started,
               n_train=len(task.train), n_val=len(task.val), n_test=len(task.test))
    return row


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict]) -> str:
    lines = ["| task | budget | method | zero-shot test | optimized test | gain | "
             "search LM calls | search s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['budget']} | {r['method']} | failed: "
                         f"{r['error'][:80]} | | | | |")
            continue
        lines.append(f"| {r['task']} | {r['budget']} | {r['method']} | {_fmt(r['zero_shot'])} "
                     f"| {_fmt(r['optimized'])} | {r['optimized'] - r['zero_shot']:+.3f} | "
                     f"{r['search_lm_calls']} | {r['search_s']:.0f} |")
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in rows:
        if "error" not in r:
            groups.setdefault((r["budget"], r["method"]), []).append(r)
    for (budget, method), members in sorted(groups.items()):
        n = len(members)
        lines.append(
            f"| **average ({n} task{'s' if n > 1 else ''})** | {budget} | {method} | "
            f"{sum(m['zero_shot'] for m in members) / n:.3f} | "
            f"{sum(m['optimized'] for m in members) / n:.3f} | "
            f"{sum(m['optimized'] - m['zero_shot'] for m in members) / n:+.3f} | "
            f"{sum(m['search_lm_calls'] for m in members) / n:.0f} | "
            f"{sum(m['search_s'] for m in members) / n:.0f} |")
    return "\n".join(lines)


BASELINES = ("dspy-bfrs", "dspy-mipro", "dspy-gepa")


def checks(rows: list[dict], ours: str = "synaray-auto") -> list[str]:
    """The issue's targets on these rows: per budget, `ours` against the best baseline on
    the tasks where both ran (average test score), and per task whether `ours` at the
    smallest budget reaches the best baseline's score at the largest one."""
    ok = [r for r in rows if "error" not in r]
    score = {(r["task"], r["budget"], r["method"]): r["optimized"] for r in ok}
    lines = []
    for budget in sorted({r["budget"] for r in ok}):
        tasks = sorted({t for t, b, m in score if b == budget and m == ours
                        and any((t, b, x) in score for x in BASELINES)})
        if not tasks:
            continue
        mine = sum(score[(t, budget, ours)] for t in tasks) / len(tasks)
        best = {m: sum(score[(t, budget, m)] for t in tasks) / len(tasks)
                for m in BASELINES if all((t, budget, m) in score for t in tasks)}
        if best:
            name = max(best, key=best.get)
            lines.append(f"budget {budget}, {len(tasks)} task(s) {tasks}: {ours} "
                         f"{mine:.3f} vs best baseline {name} {best[name]:.3f} "
                         f"({mine - best[name]:+.3f}; target >= +0.020)")
        per_task = sum(max(score[(t, budget, m)] for m in BASELINES if (t, budget, m) in score)
                       for t in tasks) / len(tasks)
        lines.append(f"budget {budget}: {ours} {mine:.3f} vs the best baseline of each task "
                     f"{per_task:.3f} ({mine - per_task:+.3f}; stricter)")
    budgets = sorted({r["budget"] for r in ok})
    if len(budgets) >= 2:
        small, large = budgets[0], budgets[-1]
        reached = []
        for task in sorted({r["task"] for r in ok}):
            mine = score.get((task, small, ours))
            base = [score[(task, large, m)] for m in BASELINES if (task, large, m) in score]
            if mine is not None and base:
                reached.append(f"{task}: {mine:.3f} at {small} vs {max(base):.3f} at {large} "
                               f"({'reached' if mine >= max(base) else 'not reached'})")
        if reached:
            lines.append(f"{ours} at {small} calls against the best baseline at {large}: "
                         + "; ".join(reached))
    return lines


def report(paths: list[str]) -> int:
    """The table and checks from result files (the last row per task/budget/method)."""
    latest: dict[tuple, dict] = {}
    for path in paths:
        if not Path(path).is_file():
            raise SystemExit(f"error: --report {path}: no such file")
        for line in Path(path).read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                latest[(row["task"], row["budget"], row["method"])] = row
    rows = sorted(latest.values(), key=lambda r: (r["budget"], r["task"], r["method"]))
    print(table(rows))
    for line in checks(rows):
        print(line)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(f"vs_baselines: stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # `kill` (SIGTERM) unwinds like Ctrl-C, so the bench's own model server is stopped too
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    tasks = load_tasks(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or ROOT / "results" / f"vs_baselines-{stamp}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    zero_cache: dict = {}
    print(f"tasks: {[t.name for t in tasks]}; budgets: {args.budget}; methods: {args.methods}; "
          f"split {args.n_train}/{args.n_val}/{args.n_test} (seed {args.split_seed}); "
          f"results: {out}", flush=True)
    print("DSPy runs its task program through a plain question/answer adapter "
          "(dspy_methods.PlainQAAdapter): its default adapters cannot parse this model's "
          "answers.", flush=True)
    with model_server(args) as api_base:
        for task in tasks:
            for budget in args.budget:
                for method in args.methods:
                    print(f"\n== {task.name} / budget {budget} / {method}", flush=True)
                    row = run_one(method, task, budget, api_base, args, zero_cache)
                    rows.append(row)
                    with out.open("a") as f:
                        f.write(json.dumps(row, default=str) + "\n")
                    print(table([row]).splitlines()[2], flush=True)
    print("\n" + table(rows))
    for line in checks(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
