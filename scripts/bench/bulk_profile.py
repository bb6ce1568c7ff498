"""Bench: the CPU that bulk evaluation spends per row, and where it goes, in one process.

What `bulk_evaluate` runs per row, without Ray in between: a `BulkScorer` (the class every
Ray Data scorer actor runs) scores blocks of `--batch-size` rows, several blocks at a time
as an actor does, and the driver's part writer takes each scored block, against the loopback
latency server of `bulk_memory.py` (a subprocess; same data, same saved program: a
`Generator` over the direct HTTP transport, reward exact_match, Accuracy and F1 metrics).

It prints:

Blocks are `block_rows(batch_size, concurrency)` rows, as in `bulk_evaluate`.

1. CPU per row (`time.process_time` of this process for the scorer and for the part writer,
   the server process's CPU time from /proc), and the 2-core rate that CPU allows:
   `2 / (CPU seconds per row)`, with and without the server's share (the loopback server
   stands for the model server, which is not on the client's cores in a real deployment).
2. A cProfile of the scorer, each part's own time ("tottime") added up by the module it is
   in, scaled to the unprofiled CPU per row so that the parts add up to the measured figure,
   and the cumulative time of the per-row routines (validation, the program call, reward,
   metric states, output columns).

Example:
    $ python scripts/bench/bulk_profile.py                  # 20,000 rows
    $ python scripts/bench/bulk_profile.py --rows 5000 --top 30
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import pstats
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bulk_memory import make_data, save_program, start_server
from proc_stats import cpu_seconds

# (part, substrings of a function's file path), first match wins.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("aiohttp (HTTP client)", ("/aiohttp/", "/yarl/", "/multidict/", "/propcache/",
                               "/frozenlist/")),
    ("pyarrow (blocks <-> rows)", ("/pyarrow/",)),
    ("JSON encode/decode", ("/json/",)),
    ("pydantic validation", ("/pydantic/", "/pydantic_core/")),
    ("synaray: LM call (request, parsing, retries, usage)", ("synaray/lm/",)),
    ("synaray: bulk scorer (rows, metric states, columns)", ("synaray/engines/ray/",)),
    ("synaray: per-sample routine, traces", ("synaray/engines/evaluation",
                                             "synaray/utils/tracing")),
    ("synaray: metrics", ("synaray/metrics/",)),
    ("synaray: program, modules, prompts, data models", ("synaray/programs/",
                                                         "synaray/modules/",
                                                         "synaray/data/")),
    ("synaray: reward", ("synaray/rewards/",)),
    ("synaray: other", ("synaray/",)),
    ("asyncio event loop, sockets", ("asyncio/", "selectors", "socket")),
]
OTHER = "other (builtins, stdlib)"

# (label, file suffix, function name): cumulative time of the routines a row goes through.
ROUTINES = [
    ("row validation (BulkScorer.parse)", "bulk_evaluate.py", "parse"),
    ("blocks -> rows (Table.to_pylist)", "pyarrow/table.pxi", "to_pylist"),
    ("program call (prompt + LM call + output)", "programs/program.py", "call"),
    ("  prompt building (Generator.build_messages)", "modules/generator.py",
     "build_messages"),
    ("  LM call (LanguageModel.__call__)", "lm/language_model.py", "__call__"),
    ("    HTTP post (post_chat)", "lm/transport/openai_http.py", "post_chat"),
    ("reward (compute_elementwise)", "rewards/reward.py", "compute_elementwise"),
    ("prediction JSON (to_json_data_model)", "data/data_model.py", "to_json_data_model"),
    ("metric states (per row)", "bulk_evaluate.py", "_metric_states"),
    ("output columns (_result_columns)", "bulk_evaluate.py", "_result_columns"),
]


def stage_of(filename: str) -> str:
    for stage, needles in STAGES:
        if any(n in filename for n in needles):
            return stage
    return OTHER


async def score_all(scorer, blocks: list, in_flight: int, writer=None) -> list:
    """Score every block, `in_flight` blocks at a time (what Ray Data gives one actor)."""
    semaphore = asyncio.Semaphore(in_flight)

    async def one(block):
        async with semaphore:
            return await scorer(block)

    return await asyncio.gather(*(one(b) for b in blocks))


def setup(args: argparse.Namespace, work: str, api_base: str):
    import pyarrow.parquet as pq

    from synaray.engines.ray.bulk_evaluate import BulkScorer, _make_plan, _PartWriter, block_rows

    make_data(f"{work}/data.parquet", args.rows)
    save_program(f"{work}/program.json", api_base)
    plan = _make_plan(f"{work}/program.json", f"{work}/data.parquet", f"{work}/out", None,
                      None, None, "id", {"q": "question"}, None)
    table = pq.read_table(f"{work}/data.parquet", columns=plan.columns.columns)
    rows = block_rows(args.batch_size, args.concurrency)
    blocks = [table.slice(i, rows) for i in range(0, len(table), rows)]
    scorer = BulkScorer(plan.programs, plan.columns, max_concurrency=args.concurrency,
                        batch_size=args.batch_size)

    def writer() -> _PartWriter:
        return _PartWriter(plan.store, plan.metric_configs, args.rows_per_file, 1e9)

    return scorer, blocks, writer


def measure(args: argparse.Namespace, work: str) -> None:
    server, port = start_server(args.latency_s)
    try:
        api_base = f"http://127.0.0.1:{port}/v1"
        scorer, blocks, writer = setup(args, work, api_base)
        in_flight = math.ceil(args.concurrency / blocks[0].num_rows) + 1
        loop = asyncio.new_event_loop()
        warm = blocks[: max(1, len(blocks) // 10)]
        loop.run_until_complete(score_all(scorer, warm, in_flight))  # connections, imports

        server_cpu, cpu, wall = cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        scored = loop.run_until_complete(score_all(scorer, blocks, in_flight))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server_cpu = cpu_seconds(server.pid) - server_cpu
        rows = sum(t.num_rows for t in scored)
        errors = sum(t.num_rows - t.column("error").null_count for t in scored)
        part_writer, wcpu = writer(), time.process_time()
        for table in scored:
            part_writer.add(table)
        part_writer.commit()
        wcpu = time.process_time() - wcpu

        ms = {"scorer (worker)": cpu / rows * 1e3, "part writer (driver)": wcpu / rows * 1e3,
              "loopback server": server_cpu / rows * 1e3}
        client = ms["scorer (worker)"] + ms["part writer (driver)"]
        print(json.dumps({"rows": rows, "row_errors": errors, "batch_size": args.batch_size,
                          "concurrency": args.concurrency, "latency_ms": args.latency_s * 1e3,
                          "load": round(os.getloadavg()[0], 2),
                          "wall_rows_per_s": round(rows / wall, 1)}), flush=True)
        print("CPU per row:")
        for name, value in ms.items():
            print(f"  {value:7.3f} ms  {name}")
        print(f"  {client:7.3f} ms  client (scorer + writer): 2 cores allow "
              f"{2000 / client:,.0f} rows/s")
        print(f"  {client + ms['loopback server']:7.3f} ms  with the loopback server: 2 cores "
              f"allow {2000 / (client + ms['loopback server']):,.0f} rows/s", flush=True)

        profile = cProfile.Profile()
        profile.enable()
        loop.run_until_complete(score_all(scorer, blocks, in_flight))
        profile.disable()
        report(pstats.Stats(profile), rows, ms["scorer (worker)"], args.top)
        loop.run_until_complete(loop.shutdown_asyncgens())  # closes the HTTP pool
        loop.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def report(stats: pstats.Stats, rows: int, cpu_ms: float, top: int) -> None:
    by_stage: dict[str, float] = {}
    funcs = []
    for (filename, line, func), (_, _, tottime, cumtime, _) in stats.stats.items():
        stage = stage_of(filename)
        by_stage[stage] = by_stage.get(stage, 0.0) + tottime
        funcs.append((tottime, cumtime, filename, line, func))
    total = sum(by_stage.values()) or 1.0
    scale = cpu_ms / (total / rows * 1e3)
    print(f"\nscorer: {cpu_ms:.3f} ms of CPU per row, by part (profile shares scaled to it)")
    for stage, seconds in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / total * cpu_ms:7.3f} ms  {100 * seconds / total:5.1f}%  {stage}")
    print("per-row routines, cumulative (a routine's callees included; scaled likewise)")
    for name, suffix, func in ROUTINES:
        cum = sum(c for _, c, f, _, fn in funcs if f.endswith(suffix) and fn == func)
        print(f"  {cum / rows * 1e3 * scale:7.3f} ms  {name}")
    for tottime, _, filename, line, func in sorted(funcs, reverse=True)[:top]:
        where = f"{filename.rsplit('site-packages/', 1)[-1].rsplit('src/', 1)[-1]}:{line}"
        print(f"      {100 * tottime / total:5.1f}%  {where}({func})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--latency-s", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rows-per-file", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=0, help="also print the top functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synaray-bulk-profile-") as work:
        measure(args, work)


if __name__ == "__main__":
    main()
