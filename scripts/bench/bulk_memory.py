"""Bench: `bulk_evaluate` on a 100,000-row Parquet file against a loopback latency server.

What it shows: the driver's memory stays bounded (peak RSS printed, must be < 1 GB) while
every row is scored and written, the rate in rows/s, and, with `--kill-after N`, that a run
killed after N rows were written finishes on rerun without the server seeing a request for
any row written before the kill.

How: the script generates the data, starts its own small aiohttp server on 127.0.0.1 (a
subprocess; fixed latency, short canned JSON answers: the label, wrong for multiples of 7),
starts a local Ray cluster, saves a program, and runs the scoring driver as a subprocess so
that its RSS is measured alone (sampled every 0.1 s from /proc) and so that it can be
killed with SIGKILL. No network beyond 127.0.0.1.

CPU per row: the CPU time of every process under the bench (the driver, the scorer actors,
Ray's other workers and daemons, the loopback server, the bench itself) is sampled from
/proc every 0.5 s and printed per scored row, over the whole run and from the first part
file on (process start-up and actor building left out), with the rate 2 cores allow: a
figure that does not depend on how loaded the machine is, unlike rows/s. The loopback
server stands for the model server (elsewhere in a real deployment): the client's total
leaves it out, the second total adds it. `--cpu-detail` splits Ray's processes by title.

The program is a real `Generator` with a `synaray.LanguageModel` (cache off), run by the
real per-sample routine: the product path, as `synaray evaluate` runs it. For this
`openai/...` model with an `api_base` that is the direct HTTP transport, one keep-alive
pool per Ray Data worker; `--transport litellm` measures the litellm path instead (about
6 ms of CPU per call: expect a few hundred rows/s on 2 cores).

Example:
    $ python scripts/bench/bulk_memory.py                      # 100,000 rows
    $ python scripts/bench/bulk_memory.py --kill-after 40000   # kill, rerun, check resume
    $ python scripts/bench/bulk_memory.py --rows 5000 --transport litellm
    $ python scripts/bench/bulk_memory.py --rows 50000 --cpu-detail
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from proc_stats import cmdline, cpu_seconds, descendants, rss_bytes  # noqa: E402

GB = 1024**3


def label(n: int) -> str:
    return "yes" if n % 3 else "no"


# --- the loopback server (a subprocess: `--serve PORT LATENCY`) ----------------------------
def completion(body: dict, content: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """An OpenAI chat completion answering `body` with `content` (the loopback servers')."""
    return {"id": "bench", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "bench"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def serve(port: int, latency_s: float) -> None:
    """An OpenAI-compatible chat endpoint with a fixed latency; counts what it was asked."""
    from aiohttp import web

    asked: list[int] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        n = int(json.loads(body["messages"][-1]["content"])["q"])
        asked.append(n)
        await asyncio.sleep(latency_s)
        content = json.dumps({"answer": "maybe" if n % 7 == 0 else label(n)})
        return web.json_response(completion(body, content, prompt_tokens=40,
                                            completion_tokens=6))

    async def stats(request: web.Request) -> web.Response:
        if request.query.get("asked"):
            return web.json_response({"requests": len(asked), "asked": asked})
        return web.json_response({"requests": len(asked)})

    async def reset(request: web.Request) -> web.Response:
        asked.clear()
        return web.json_response({"requests": 0})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                backlog=4096)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(latency_s: float) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(latency_s)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            server_call(port, "/stats")
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the latency server did not start")


def server_call(port: int, path: str, post: bool = False) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     method="POST" if post else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# --- data and program ------------------------------------------------------------------------
def make_data(path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("question", pa.string()),
                                           ("answer", pa.string())])) as writer:
        for start in range(0, rows, 10_000):
            stop = min(rows, start + 10_000)
            writer.write_table(pa.table({
                "id": [f"q{i:07d}" for i in range(start, stop)],
                "question": [str(i) for i in range(start, stop)],
                "answer": [label(i) for i in range(start, stop)]}))


def save_program(path: str, api_base: str) -> None:
    import synaray

    class Question(synaray.DataModel):
        q: str

    class Answer(synaray.DataModel):
        answer: str

    async def build() -> Any:
        lm = synaray.LanguageModel("openai/bench", api_base=api_base, cache=False, retries=1,
                                   max_tokens=16, max_concurrency=1024,
                                   structured_output="json_object")
        inputs = synaray.Input(data_model=Question)
        outputs = await synaray.Generator(data_model=Answer, language_model=lm)(inputs)
        return synaray.Program(inputs=inputs, outputs=outputs, name="bench")

    program = asyncio.run(build())
    program.compile(reward="exact_match", metrics=[synaray.metrics.Accuracy(),
                                                   synaray.metrics.F1Score()])
    program.save(path)


# --- the scoring driver (a subprocess: `--drive ...`) ----------------------------------------
def drive(args: argparse.Namespace) -> None:
    from synaray.engines.ray.bulk_evaluate import bulk_evaluate

    paths = [p for p in sys.path if p and os.path.isdir(p) and p != HERE]
    env = {"PYTHONPATH": os.pathsep.join(paths), "SYNARAY_LM_TRANSPORT": args.transport}
    summary = bulk_evaluate(
        args.program, args.data, args.out, input_fields={"q": "question"},
        address=args.address, runtime_env={"env_vars": env},
        batch_size=args.batch_size, concurrency=args.concurrency, num_workers=args.workers,
        worker_num_cpus=0.5, rows_per_file=args.rows_per_file, flush_every_s=10.0)
    print("SUMMARY " + json.dumps(summary), flush=True)


def rows_written(out: str) -> int:
    import pyarrow.parquet as pq

    if not os.path.isdir(out):
        return 0
    return sum(pq.read_metadata(os.path.join(out, n)).num_rows for n in os.listdir(out)
               if n.startswith("part-") and n.endswith(".parquet"))


class CpuByGroup:
    """CPU seconds used by each group of processes under this bench process since `start`.

    Every process below the bench (its Ray head: GCS, raylet, workers; the driver; the
    loopback server) is sampled every `sample()`; a process that exits between two samples
    loses at most the CPU of that interval. Groups: the driver, the scorer actors, other Ray
    workers (read and repartition tasks), Ray's own daemons, the loopback server, the bench;
    with `detail`, Ray's processes are grouped by their own title instead.
    """

    def __init__(self, driver: int, server: int, detail: bool = False) -> None:
        self.driver, self.server, self.detail = driver, server, detail
        self.base: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        for pid, _, cpu in self._read():
            self.base[pid] = cpu

    def group(self, pid: int) -> str:
        if pid == self.driver:
            return "driver"
        if pid == self.server:
            return "loopback server"
        if pid == os.getpid():
            return "bench process"
        name = cmdline(pid)
        if "BulkScorer" in name or "MapWorker" in name:
            return "scorer actors"
        if self.detail:  # the process's own title (Ray workers name the task they run)
            return name.split(" ")[0].rsplit("/", 1)[-1][:60] or "(exited)"
        return "other Ray workers" if name.startswith("ray::") else "Ray daemons"

    def _read(self) -> list[tuple[int, str, float]]:
        found = []
        for pid in [os.getpid(), *descendants(os.getpid())]:
            try:
                found.append((pid, self.group(pid), cpu_seconds(pid)))
            except (OSError, ValueError):
                continue  # gone meanwhile
        return found

    def sample(self) -> None:
        for pid, group, cpu in self._read():
            self.last[pid] = (group, cpu)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (group, cpu) in self.last.items():
            out[group] = out.get(group, 0.0) + cpu - self.base.get(pid, 0.0)
        return out


def run_driver(args: argparse.Namespace, work: str, address: str, server_pid: int,
               kill_after: int | None) -> dict:
    """Run the driver subprocess; sample its RSS and everyone's CPU; SIGKILL it once
    `kill_after` rows are in."""
    cmd = [sys.executable, __file__, "--drive", "--address", address,
           "--program", f"{work}/program.json", "--data", f"{work}/data.parquet",
           "--out", f"{work}/out", "--batch-size", str(args.batch_size),
           "--concurrency", str(args.concurrency), "--workers", str(args.workers),
           "--rows-per-file", str(args.rows_per_file), "--transport", args.transport]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    cpu = CpuByGroup(child.pid, server_pid, args.cpu_detail)
    peak, started, killed = 0, time.monotonic(), False
    next_check = next_print = next_cpu = started
    first_part: tuple[int, dict] | None = None  # rows written, CPU by group at that time
    while child.poll() is None:
        try:
            rss = rss_bytes(child.pid)
        except OSError:
            break
        peak, now = max(peak, rss), time.monotonic()
        if now >= next_cpu:
            next_cpu = now + 0.5
            cpu.sample()
            if first_part is None and (written := rows_written(f"{work}/out")) > 0:
                first_part = (written, cpu.totals())
        if now >= next_print and rss > 50 * 2**20:  # the RSS stays flat while rows pile up
            next_print = now + 15
            print(f"  driver RSS {rss / 2**20:,.0f} MiB, {rows_written(f'{work}/out'):,} rows "
                  "written", flush=True)
        if kill_after is not None and now >= next_check:
            next_check = now + 0.5
            if rows_written(f"{work}/out") >= kill_after:
                child.send_signal(signal.SIGKILL)
                killed = True
        time.sleep(0.1)
    output = child.stdout.read()
    child.wait()
    summary = next((json.loads(line[8:]) for line in output.splitlines()
                    if line.startswith("SUMMARY ")), None)
    cpu.sample()
    return {"peak_rss": peak, "elapsed_s": time.monotonic() - started, "killed": killed,
            "returncode": child.returncode, "summary": summary, "cpu_s": cpu.totals(),
            "rows_first_part": first_part[0] if first_part else 0,
            "cpu_first_part": first_part[1] if first_part else {}}


# --- main --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--latency-s", type=float, default=0.02)
    parser.add_argument("--transport", choices=["auto", "litellm", "http"], default="auto",
                        help="SYNARAY_LM_TRANSPORT for the scoring workers (default: auto)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rows-per-file", type=int, default=10_000)
    parser.add_argument("--kill-after", type=int, default=None,
                        help="SIGKILL the driver once this many rows are written, then rerun")
    parser.add_argument("--cpu-detail", action="store_true",
                        help="CPU per row of each Ray process title (read tasks, actors...)")
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "LATENCY_S"), help=argparse.SUPPRESS)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    for name in ("--address", "--program", "--data", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


GROUPS = ("driver", "scorer actors", "other Ray workers", "Ray daemons", "bench process",
          "loopback server")


def cpu_per_row(run: dict, steady: bool = False) -> dict[str, float]:
    """CPU ms per scored row of each process group, the client's total (everything but the
    loopback server, which stands for the model server) and the total with the server;
    `steady`: only from the first part file on (no process start-up, no actor building)."""
    scored = ((run["summary"] or {}).get("run") or {}).get("rows_scored") or 0
    cpu_s = run["cpu_s"]
    if steady:
        scored -= run["rows_first_part"]
        cpu_s = {g: v - run["cpu_first_part"].get(g, 0.0) for g, v in cpu_s.items()}
    if scored <= 0:
        return {}
    ms = {g: round(cpu_s.get(g, 0.0) / scored * 1e3, 3) for g in GROUPS}
    client = sum(v for g, v in cpu_s.items() if g != "loopback server")
    ms["client total"] = round(client / scored * 1e3, 3)
    ms["total with server"] = round(ms["client total"] + ms["loopback server"], 3)
    if any(g not in GROUPS for g in cpu_s):  # --cpu-detail
        ms.update({f"  {g}": round(v / scored * 1e3, 3) for g, v in
                   sorted(cpu_s.items(), key=lambda kv: -kv[1]) if g not in GROUPS})
    return ms


def report(name: str, run: dict, out: str) -> None:
    summary = run["summary"] or {}
    rate = (summary.get("run") or {}).get("rows_per_s")
    print(f"{name}: rows written so far {rows_written(out):,}  peak driver RSS "
          f"{run['peak_rss'] / 2**20:,.0f} MiB  wall {run['elapsed_s']:.1f} s  "
          f"rows/s {rate if rate is not None else '-'}  killed={run['killed']}  load "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    for steady in (False, True):
        ms = cpu_per_row(run, steady)
        if ms:
            print(f"  CPU ms per row{' from the first part file on' if steady else ''}: "
                  + ", ".join(f"{g.strip()} {v:.3f}" for g, v in ms.items()))
            print(f"    2 cores allow {2000 / ms['client total']:,.0f} rows/s of client CPU, "
                  f"{2000 / ms['total with server']:,.0f} rows/s with the loopback server on "
                  "the same cores", flush=True)


def check_output(out: str, rows: int) -> dict:
    import pyarrow.dataset as pads

    table = pads.dataset(out, format="parquet", exclude_invalid_files=True).to_table(
        columns=["id"])
    ids = table.column("id")
    import pyarrow.compute as pc

    return {"rows": len(ids), "unique_ids": pc.count_distinct(ids).as_py(),
            "expected": rows}


def bench(args: argparse.Namespace, work: str) -> int:
    import ray

    make_data(f"{work}/data.parquet", args.rows)
    server, port = start_server(args.latency_s)
    try:
        save_program(f"{work}/program.json", f"http://127.0.0.1:{port}/v1")
        # address="local": a bare init joins any cluster already running on the machine
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        address = ray.get_runtime_context().gcs_address
        print(f"bench: {args.rows:,} rows, latency {args.latency_s * 1000:.0f} ms, transport "
              f"{args.transport}, {args.workers} workers x {args.concurrency} in flight, load "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        runs = []
        if args.kill_after is not None:
            runs.append(("first run", run_driver(args, work, address, server.pid, args.kill_after)))
            report(*runs[-1], f"{work}/out")
            time.sleep(2.0)  # the killed driver's actors are gone
            server_call(port, "/reset", post=True)
        done_before = _done_ids(f"{work}/out")
        runs.append(("rerun" if runs else "run", run_driver(args, work, address, server.pid, None)))
        report(*runs[-1], f"{work}/out")
        return summarize(args, work, port, runs, done_before)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        server.terminate()
        server.wait()


def _done_ids(out: str) -> set[str]:
    import pyarrow.parquet as pq

    if not os.path.isdir(out):
        return set()
    return {i for n in os.listdir(out) if n.startswith("part-") and n.endswith(".parquet")
            for i in pq.read_table(os.path.join(out, n), columns=["id"]).column(0).to_pylist()}


def summarize(args: argparse.Namespace, work: str, port: int, runs: list, done: set) -> int:
    final = runs[-1][1]
    asked = server_call(port, "/stats?asked=1")["asked"]
    rescored = len({f"q{n:07d}" for n in asked} & done)
    output = check_output(f"{work}/out", args.rows)
    peak = max(r["peak_rss"] for _, r in runs)
    summary = final["summary"] or {}
    print(json.dumps({
        "rows_written": output["rows"], "unique_ids": output["unique_ids"],
        "expected_rows": args.rows, "peak_driver_rss_mib": round(peak / 2**20, 1),
        "rows_per_s": (summary.get("run") or {}).get("rows_per_s"),
        "cpu_ms_per_row": cpu_per_row(final),
        "cpu_ms_per_row_from_first_part": cpu_per_row(final, steady=True),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "reward": summary.get("reward"), "metrics": summary.get("metrics"),
        "last_run_rows_scored": (summary.get("run") or {}).get("rows_scored"),
        "last_run_rows_skipped": (summary.get("run") or {}).get("rows_skipped"),
        "requests_for_rows_written_before_last_run": rescored}, indent=2))
    ok = (output["rows"] == output["unique_ids"] == args.rows and peak < GB
          and final["returncode"] == 0 and rescored == 0)
    print("OK" if ok else "FAILED", flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]))
        return 0
    if args.drive:
        drive(args)
        return 0
    work = args.dir or tempfile.mkdtemp(prefix="synaray-bulk-bench-")
    os.makedirs(work, exist_ok=True)
    shutil.rmtree(f"{work}/out", ignore_errors=True)
    try:
        return bench(args, work)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
