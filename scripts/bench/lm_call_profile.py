"""Bench: the client CPU of one LM call, end to end, and where it goes.

Against the loopback latency server of `throughput.py` (a subprocess), N calls C at a time:

1. CPU per call (this process, `time.process_time`), each path measured alone:
   `raw` (plain aiohttp POSTs, answers decoded), `bare` (`litellm.acompletion`),
   `lm-litellm` / `lm-http` (`LanguageModel(...)(messages, data_model=...)` with
   `transport="litellm"` / `"http"`: request building, grammar, retries, call slots,
   parsing, validation, usage, trace record), and `program` (a one-Generator program run
   by `LocalEngine`: the module's prompt building, the per-sample routine, the reward).
2. A cProfile of the `lm-litellm`, `lm-http` and `program` runs, own time ("tottime") of
   every function added up by stage (which package or synaray module it is in), scaled to
   the unprofiled CPU per call of (1), so the stages add up to the measured figure.

Example:
    $ python scripts/bench/lm_call_profile.py                 # C=64, N=2000, 50 ms
    $ python scripts/bench/lm_call_profile.py -n 500 --top 25  # and the top functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from throughput import build_program, dataset, start_server

# (stage, substrings of a function's file path), first match wins.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("litellm (incl. its logging, cost, response objects)", ("/litellm/",)),
    ("openai SDK + httpx (litellm's HTTP client)", ("/openai/", "/httpx/", "/httpcore/",
                                                     "/h11/", "/anyio/", "/sniffio/")),
    ("aiohttp (direct transport's HTTP client)", ("/aiohttp/", "/yarl/", "/multidict/",
                                                  "/propcache/", "/frozenlist/")),
    ("JSON encode/decode", ("/json/",)),
    ("pydantic validation", ("/pydantic/", "/pydantic_core/")),
    ("synaray: answer parsing", ("synaray/lm/parsing",)),
    ("synaray: request building, grammar", ("synaray/lm/language_model", "synaray/lm/grammar",
                                            "synaray/lm/transport/")),
    ("synaray: retries, slots, limiter", ("/tenacity/", "synaray/lm/retry",
                                          "synaray/lm/call_slots", "synaray/lm/base",
                                          "synaray/lm/errors", "synaray/lm/rate_limit")),
    ("synaray: usage, trace records", ("synaray/lm/usage", "synaray/utils/tracing",
                                       "synaray/lm/hooks", "synaray/lm/results")),
    ("synaray: modules, engine, reward", ("synaray/",)),
    ("asyncio event loop, sockets", ("asyncio/", "selectors", "socket", "ssl")),
]
OTHER = "other (builtins, stdlib)"


def stage_of(filename: str) -> str:
    for stage, needles in STAGES:
        if any(n in filename for n in needles):
            return stage
    return OTHER


async def make_calls(api_base: str, n: int, c: int):
    """The measured paths, as `name -> async fn()` that makes N calls C at a time."""
    import aiohttp
    import litellm

    import synaray
    from synaray.data.data_model import to_json_data_model
    from synaray.engines import LocalEngine
    from synaray.lm.transport.openai_http import request_body
    from synaray.optimizers.protocol import EvalRequest, candidate_id

    program, question, answer = await build_program(api_base, c)
    generator = next(m for m in program.modules if hasattr(m, "build_messages"))
    base_lm = generator.language_model
    target = await base_lm._resolve_target()
    mode = base_lm._mode_for(target)
    messages = [generator.build_messages(to_json_data_model(question(q=str(i))))
                for i in range(n)]
    requests = [base_lm._request(target, m, generator.schema, mode, {}) for m in messages]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    url = f"{target.api_base}/chat/completions"
    semaphore = asyncio.Semaphore(c)

    async def raw(i: int) -> None:
        async with semaphore, session.post(url, json=request_body(requests[i])) as response:
            assert (await response.json())["choices"][0]["message"]["content"]

    async def bare(i: int) -> None:
        async with semaphore:
            response = await litellm.acompletion(**requests[i])
        assert response.choices[0].message.content

    lms = {t: synaray.LanguageModel("openai/bench", api_base=api_base, cache=False, retries=0,
                                    max_concurrency=c, transport=t) for t in ("litellm", "http")}

    def via(lm):
        async def one(i: int) -> None:
            result = await lm(messages[i], data_model=answer)
            assert result.ok, result.error
        return one

    engine = LocalEngine(max_concurrency=c)
    data = dataset(n, question, answer)
    await engine.start(program, program.reward, {"eval": data})
    state = program.get_state()

    async def run_program() -> None:
        results = await engine.evaluate([EvalRequest(candidate_id(state), state,
                                                     tuple(data.ids), "eval")])
        assert not any(r.error for r in results)

    def loop_of(one):
        async def run() -> None:
            await asyncio.gather(*(one(i) for i in range(n)))
        return run

    calls = {"raw": loop_of(raw), "bare": loop_of(bare), "lm-litellm": loop_of(via(lms["litellm"])),
             "lm-http": loop_of(via(lms["http"])), "program": run_program}
    for run in calls.values():  # warm up: imports, connections, program build
        await run()
    return calls, session, engine


async def measure(api_base: str, args: argparse.Namespace) -> None:
    calls, session, engine = await make_calls(api_base, args.examples, args.concurrency)
    cpu_ms: dict[str, float] = {}
    try:
        print(f"{'path':<12} {'calls/s':>9} {'CPU ms/call':>12}")
        for name, run in calls.items():
            cpu, wall = time.process_time(), time.perf_counter()
            await run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            cpu_ms[name] = cpu / args.examples * 1000
            print(f"{name:<12} {args.examples / wall:9.1f} {cpu_ms[name]:12.3f}", flush=True)
        for name in ("lm-litellm", "lm-http", "program"):
            profile = cProfile.Profile()
            profile.enable()
            await calls[name]()
            profile.disable()
            report(name, pstats.Stats(profile), cpu_ms[name], args.top)
    finally:
        await session.close()
        await engine.close()


def report(name: str, stats: pstats.Stats, cpu_ms: float, top: int) -> None:
    by_stage: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_, _, tottime, _, _) in stats.stats.items():
        stage = stage_of(filename)
        by_stage[stage] = by_stage.get(stage, 0.0) + tottime
        rows.append((tottime, f"{filename.rsplit('site-packages/', 1)[-1]}:{line}({func})"))
    total = sum(by_stage.values()) or 1.0
    print(f"\n{name}: {cpu_ms:.3f} ms of CPU per call, by stage (profile shares scaled to it)")
    for stage, seconds in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / total * cpu_ms:7.3f} ms  {100 * seconds / total:5.1f}%  {stage}")
    for seconds, where in sorted(rows, reverse=True)[:top]:
        print(f"      {100 * seconds / total:5.1f}%  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", "-c", type=int, default=64)
    parser.add_argument("--examples", "-n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency, s")
    parser.add_argument("--top", type=int, default=0, help="also print the top functions")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    server, api_base = start_server(args.latency)
    try:
        print(json.dumps({"C": args.concurrency, "N": args.examples,
                          "latency_ms": args.latency * 1000, "cores": os.cpu_count(),
                          "load": round(os.getloadavg()[0], 2)}), flush=True)
        asyncio.run(measure(api_base, args))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
