"""Bench: do evaluators idle? Generation-synchronous vs steady-state PopulationSearch.

What it measures, in one run, for `PopulationSearch(steady_state=False)` and
`PopulationSearch(steady_state=True)` with the same seeds, data, knobs and budget:

- busy: the share of the wall time the 4 evaluator lanes have a request in flight
  (the time integral of min(in flight, 4) / 4, measured by the server, optimizer calls
  included), and `any`, the share of the time at least one request is in flight;
- wall-clock until the best validation reward reaches the target (`Budget.target_reward`
  stops the search there), and the LM calls used by then;
- the ratios steady / synchronous of those medians (targets: busy >= 0.90, time <= 0.7x).

The server is a loopback OpenAI-compatible endpoint (aiohttp, in a subprocess) whose
latency is lognormal with p99 = 10x the median (sigma = ln 10 / 2.326). It is a scripted
model whose answers depend on the prompt, so the search can improve: the task says "no" for
multiples of 3 and "yes" otherwise; the model is always right on multiples of 3, and on
the other numbers right with a probability that grows with the number of few-shot demos
in the prompt (0.1 + 0.2 per demo, at most 0.9), or 0.95 once the instructions state the
rule ("multiple of 3"); "right" is drawn from a hash of the prompt, so a given prompt always
gets the same answer. Instruction proposals (reflection, grounded) state the rule in about
a third of the answers (a hash of the prompt again).

The engine is `LocalEngine(max_concurrency=4)`: 4 LM calls in flight at most, i.e. 4
evaluators that each run one call at a time. It is used rather than `RayEngine(
num_evaluators=4)` because on this code base the Ray driver loop still hands each
ask/tell step to the optimizer actor with a step token (one outstanding step at a time), so
the steady-state loop can only drive a local optimizer; and on a 2-core machine Ray's
actors would add their own scheduling noise to a latency measurement. The two searches
make the same kinds of calls through the same LM-call bound, so the comparison holds.

Example:
    $ python scripts/bench/utilization.py                  # 3 seeds, median 100 ms
    $ python scripts/bench/utilization.py --seeds 5 --median-ms 60 --target 0.9
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

from bulk_memory import completion, free_port, server_call  # the bulk bench's loopback helpers

LANES = 4
P99_RATIO = 10.0
SIGMA = math.log(P99_RATIO) / 2.326  # lognormal: p99 / median = exp(2.326 sigma)
RULE = "multiple of 3"


# --- the loopback server (a subprocess: `--serve PORT MEDIAN_S SEED`) ----------------------
def _unit(text: str) -> float:
    """A uniform number in [0, 1) from `text` (the same text, the same number)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16 ** 12


def scripted_answer(messages: list[dict]) -> dict:
    """What the scripted model answers (see the module docstring)."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    prompt = json.dumps(messages, sort_keys=True)
    try:
        n = int(json.loads(messages[-1]["content"])["q"])
    except (ValueError, KeyError, TypeError):
        n = None
    if n is None or '{"instructions"' in system:  # an instruction proposal
        if _unit("rule" + prompt) < 0.35:
            return {"instructions": f"Answer no when the number is a {RULE}, otherwise yes."}
        return {"instructions": f"Read the number carefully and answer yes or no "
                                f"(variant {int(_unit(prompt) * 1000)})."}
    truth = "no" if n % 3 == 0 else "yes"
    demos = max(0, (len(messages) - 2) // 2)
    p_right = 0.95 if RULE in system else min(0.9, 0.1 + 0.2 * demos)
    right = n % 3 == 0 or _unit(prompt) < p_right
    return {"answer": truth if right else ("yes" if truth == "no" else "no")}


def serve(port: int, median_s: float, seed: int) -> None:
    """The endpoint, plus `/stats` (busy integrals) and `/reset`."""
    from aiohttp import web

    rng = random.Random(seed)
    clock = {"t0": time.monotonic(), "last": time.monotonic(), "inflight": 0, "busy": 0.0,
             "any": 0.0, "requests": 0}

    def tick() -> None:
        now = time.monotonic()
        span = now - clock["last"]
        clock["busy"] += min(clock["inflight"], LANES) * span
        clock["any"] += span if clock["inflight"] else 0.0
        clock["last"] = now

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        tick()
        clock["inflight"] += 1
        clock["requests"] += 1
        try:
            await asyncio.sleep(median_s * math.exp(SIGMA * rng.gauss(0.0, 1.0)))
            content = json.dumps(scripted_answer(body["messages"]))
        finally:
            tick()
            clock["inflight"] -= 1
        return web.json_response(completion(body, content, prompt_tokens=60,
                                            completion_tokens=8))

    async def stats(request: web.Request) -> web.Response:
        tick()
        wall = time.monotonic() - clock["t0"]
        return web.json_response({"wall_s": wall, "busy": clock["busy"] / (LANES * wall),
                                  "any": clock["any"] / wall, "requests": clock["requests"]})

    async def reset(request: web.Request) -> web.Response:
        tick()
        clock.update(t0=time.monotonic(), busy=0.0, any=0.0, requests=0)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_server(median_s: float, seed: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(median_s),
                             str(seed)])
    for _ in range(300):  # up to a minute on a loaded machine
        try:
            server_call(port, "/stats")
        except OSError:
            time.sleep(0.2)
            continue
        return proc, port
    proc.kill()
    raise RuntimeError("the latency server did not start")


# --- one search ------------------------------------------------------------------------------
async def one_search(args: argparse.Namespace, port: int, seed: int, steady: bool) -> dict:
    import synaray
    from synaray.engines import LocalEngine
    from synaray.optimizers import PopulationSearch

    class Number(synaray.DataModel):
        q: str

    class Label(synaray.DataModel):
        answer: str

    def data(numbers: range) -> tuple[list, list]:
        return ([Number(q=str(i)) for i in numbers],
                [Label(answer="no" if i % 3 == 0 else "yes") for i in numbers])

    api_base = f"http://127.0.0.1:{port}/v1"

    def model() -> Any:
        return synaray.LanguageModel("openai/bench", api_base=api_base, api_key="bench",
                                     cache=False, retries=1, max_tokens=64,
                                     structured_output="json_object")

    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=model())(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="utilization")
    optimizer = PopulationSearch(
        language_model=model(), population_size=args.population, seed=seed,
        steady_state=steady,
        budget={"max_lm_calls": args.max_lm_calls, "target_reward": args.target})
    program.compile(reward="exact_match", optimizer=optimizer)
    xs, ys = data(range(args.train))
    val = data(range(1000, 1000 + args.val))
    server_call(port, "/reset", post=True)
    started = time.monotonic()
    await program.fit(xs, ys, validation_data=val, epochs=args.epochs,
                      batch_size=args.batch_size, engine=LocalEngine(max_concurrency=LANES),
                      verbose=False, preflight=False)
    wall = time.monotonic() - started
    stats = server_call(port, "/stats")
    reached = (optimizer.best_val_reward or 0.0) >= args.target
    return {"mode": "steady" if steady else "sync", "seed": seed, "wall_s": wall,
            "busy": stats["busy"], "any": stats["any"], "lm_calls": optimizer.spent.lm_calls,
            "server_requests": stats["requests"], "reached": reached,
            "best_val": optimizer.best_val_reward, "stop": optimizer.stop_reason}


def summarize(runs: list[dict], target: float) -> None:
    print(f"\n{'mode':<7} {'seed':>4} {'busy':>6} {'any':>6} {'wall s':>7} {'LM calls':>9} "
          f"{'best val':>8}  stop")
    for run in runs:
        print(f"{run['mode']:<7} {run['seed']:>4} {run['busy']:>6.1%} {run['any']:>6.1%} "
              f"{run['wall_s']:>7.2f} {run['lm_calls']:>9} {run['best_val'] or 0:>8.3f}  "
              f"{run['stop']}")
    medians = {}
    for mode in ("sync", "steady"):
        mine = [r for r in runs if r["mode"] == mode]
        hit = [r for r in mine if r["reached"]]
        medians[mode] = {
            "busy": statistics.median(r["busy"] for r in mine),
            "wall": statistics.median(r["wall_s"] for r in hit) if hit else float("nan"),
            "calls": statistics.median(r["lm_calls"] for r in hit) if hit else float("nan"),
            "reached": f"{len(hit)}/{len(mine)}"}
    print(f"\nmedians (time and calls over the runs that reached {target}):")
    for mode, m in medians.items():
        print(f"  {mode:<7} busy {m['busy']:.1%}  to target {m['wall']:.2f} s  "
              f"LM calls {m['calls']:.0f}  reached {m['reached']}")
    sync, steady = medians["sync"], medians["steady"]
    print(f"\nsteady-state busy: {steady['busy']:.1%} (target >= 90%)")
    print(f"time to target, steady / sync: {steady['wall'] / sync['wall']:.2f}x "
          f"(target <= 0.70x)")
    print(f"LM calls to target, steady / sync: {steady['calls'] / sync['calls']:.2f}x")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, default=3, help="searches per mode")
    parser.add_argument("--median-ms", type=float, default=100.0, help="median latency")
    parser.add_argument("--target", type=float, default=0.9, help="target val reward")
    parser.add_argument("--max-lm-calls", type=int, default=3000, help="budget per search")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--val", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]), int(args.serve[2]))
        return 0
    proc, port = start_server(args.median_ms / 1000.0, seed=0)
    runs = []
    try:
        print(f"load average at start: {os.getloadavg()[0]:.1f}; lognormal latency, "
              f"median {args.median_ms:.0f} ms, p99 {P99_RATIO:.0f}x; {LANES} lanes")
        for seed in range(args.seeds):
            for steady in (False, True):  # alternate, so load drifts hit both alike
                run = asyncio.run(one_search(args, port, seed, steady))
                runs.append(run)
                print(f"  {run['mode']:<6} seed {seed}: busy {run['busy']:.1%}, "
                      f"{run['wall_s']:.1f} s, {run['lm_calls']} calls, best "
                      f"{run['best_val']}", flush=True)
        summarize(runs, args.target)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
