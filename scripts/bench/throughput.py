"""Bench: samples/second of synaray's engines against the wire and a bare litellm loop.

What it measures, in one run, each on the same N examples at the same total concurrency C
against the same loopback server (fixed latency, many concurrent requests):

- `raw`: an asyncio loop of plain aiohttp POSTs with the messages the program would send,
  C at a time, answers decoded: the wire's limit on this machine;
- `bare`: the same loop with `litellm.acompletion`: the ceiling of anything built on litellm;
- `bare-stream` (`--only ...,bare-stream`): the bare loop with `stream=True` (and
  `stream_options={"include_usage": True}`), every chunk read: what a streamed loop check
  on the litellm path would cost;
- `local`: `LocalEngine(max_concurrency=C)` evaluating a one-Generator program;
- `local-after`: the same with `LanguageModel(loop_stop="after")`: plain (not streamed)
  requests; `local` uses the default `loop_stop="auto"`, which streams this program's
  requests (a free-text answer: `max_tokens` 512), so the two rows give the cost of the
  streamed early stop (`--only local,local-after`);
- `ray-1`, `ray-2`, `ray-4`: `RayEngine` with 1, 2 and 4 evaluators, C // n samples in
  flight on each.

The engines use `LanguageModel` as a user would: for this `openai/...` model with an
`api_base` that is the direct HTTP transport (`--transport litellm` sets
`SYNARAY_LM_TRANSPORT` to measure the litellm path instead).

Every engine is started and warmed up (imports, HTTP clients, program build) before the
clock starts; the timed part is one `evaluate` of N examples, repeated in rounds that
alternate with a raw-loop and a bare-loop run. Printed: median samples/s, the medians of
the per-round ratios to the raw loop (target >= 0.5) and to the bare loop (target >= 3),
and the driver's CPU per sample. The server is an aiohttp app in a subprocess, so its CPU
is not the client's. A streamed request is answered with server-sent events, one per
token of the answer (6 for `{"answer": "123"}`, as SmolLM2's tokenizer splits it), then a
usage event.

Example:
    $ python scripts/bench/throughput.py                       # C=64, N=1200, 50 ms
    $ python scripts/bench/throughput.py --concurrency 16 --examples 600 --latency 0.075
    $ python scripts/bench/throughput.py --only local          # skip Ray
    $ python scripts/bench/throughput.py --transport litellm   # engines through litellm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

MODEL = "openai/bench"
TARGET_RAW = 0.5  # of the raw aiohttp loop
TARGET_BARE = 3.0  # of the bare litellm loop


# --- the loopback server (a subprocess: `--serve PORT LATENCY`) ----------------------------
def serve(port: int, latency_s: float) -> None:
    """An OpenAI-compatible chat endpoint that answers `{"answer": q}` after `latency_s`."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        q = json.loads(body["messages"][-1]["content"])["q"]
        await asyncio.sleep(latency_s)
        if body.get("stream"):
            return await stream(request, body, json.dumps({"answer": q}))
        return web.json_response({
            "id": "bench", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "bench"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant",
                                     "content": json.dumps({"answer": q})}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}})

    async def stream(request: web.Request, body: dict, content: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "bench", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "bench")}
        pieces = [content[:1], content[1:9], content[9:11], content[11:-2], content[-2:-1],
                  content[-1:]]
        for piece in pieces:
            event = {**base, "choices": [{"index": 0, "delta": {"content": piece},
                                          "finish_reason": None}]}
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        usage = {**base, "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 6,
                                                  "total_tokens": 46}}
        await response.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/ping", ping)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(latency_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", str(port),
                             str(latency_s)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the latency server did not start")


# --- what is measured ----------------------------------------------------------------------
async def build_program(api_base: str, concurrency: int, loop_stop: str = "auto"):
    import synaray

    class Question(synaray.DataModel):
        q: str

    class Answer(synaray.DataModel):
        answer: str

    lm = synaray.LanguageModel(MODEL, api_base=api_base, cache=False, retries=0,
                               max_concurrency=concurrency, loop_stop=loop_stop)
    inputs = synaray.Input(data_model=Question)
    outputs = await synaray.Generator(data_model=Answer, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="bench")
    program.compile(reward="exact_match")
    return program, Question, Answer


def dataset(n: int, question: type, answer: type, offset: int = 0):
    from synaray.data.datasets import Dataset

    ids = [str(offset + i) for i in range(n)]
    return Dataset(ids, [question(q=i) for i in ids], [answer(answer=i) for i in ids])


class BareLoop:
    """litellm.acompletion, C at a time, with the exact requests the program sends."""

    def __init__(self, program, question: type, n: int, c: int) -> None:
        self.program, self.question, self.n, self.c = program, question, n, c

    async def start(self) -> None:
        from synaray.data.data_model import to_json_data_model

        generator = next(m for m in self.program.modules if hasattr(m, "build_messages"))
        lm = generator.language_model
        target = await lm._resolve_target()
        mode = lm._mode_for(target)
        semaphore = asyncio.Semaphore(self.c)

        async def one(i: int) -> None:
            messages = generator.build_messages(to_json_data_model(self.question(q=str(i))))
            request = lm._request(target, messages, generator.schema, mode, {})
            async with semaphore:
                assert await self.complete(request)

        self.one = one
        await asyncio.gather(*(one(i) for i in range(min(self.c, 32))))  # warm-up

    async def complete(self, request: dict) -> str:
        """One bare litellm call; returns the answer's text."""
        import litellm

        from synaray.lm._litellm import NO_SDK_RETRIES

        response = await litellm.acompletion(**{**request, "max_retries": NO_SDK_RETRIES})
        return response.choices[0].message.content

    async def once(self) -> None:
        await asyncio.gather(*(self.one(i) for i in range(self.n)))

    async def stop(self) -> None:
        pass


class BareStreamLoop(BareLoop):
    """The bare loop, streamed: litellm's chunk wrapper, every chunk read."""

    async def complete(self, request: dict) -> str:
        import litellm

        from synaray.lm._litellm import NO_SDK_RETRIES

        response = await litellm.acompletion(**{
            **request, "max_retries": NO_SDK_RETRIES, "stream": True,
            "stream_options": {"include_usage": True}})
        text = ""
        async for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return text


class RawLoop(BareLoop):
    """Plain aiohttp POSTs, C at a time, with the bodies litellm would send: the wire."""

    async def start(self) -> None:
        import aiohttp

        from synaray.data.data_model import to_json_data_model
        from synaray.lm.transport.openai_http import request_body

        generator = next(m for m in self.program.modules if hasattr(m, "build_messages"))
        lm = generator.language_model
        target = await lm._resolve_target()
        mode = lm._mode_for(target)
        url = f"{target.api_base}/chat/completions"
        semaphore = asyncio.Semaphore(self.c)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

        async def one(i: int) -> None:
            messages = generator.build_messages(to_json_data_model(self.question(q=str(i))))
            body = request_body(lm._request(target, messages, generator.schema, mode, {}))
            async with semaphore:
                async with self.session.post(url, json=body) as response:
                    answer = await response.json()
            assert answer["choices"][0]["message"]["content"]

        self.one = one
        await asyncio.gather(*(one(i) for i in range(min(self.c, 32))))  # warm-up

    async def stop(self) -> None:
        await self.session.close()


class EngineRun:
    """One engine, started and warmed up once; each `once()` evaluates N examples."""

    def __init__(self, program, engine, question: type, answer: type, n: int,
                 warmup: int) -> None:
        self.program, self.engine, self.n = program, engine, n
        self.data = dataset(n + warmup, question, answer)

    def _request(self, ids: list[str]):
        from synaray.optimizers.protocol import EvalRequest, candidate_id

        state = self.program.get_state()
        return [EvalRequest(candidate_id(state), state, tuple(ids), "eval")]

    async def start(self) -> None:
        await self.engine.start(self.program, self.program.reward, {"eval": self.data})
        await self.engine.evaluate(self._request(self.data.ids[self.n:]))

    async def once(self) -> None:
        results = await self.engine.evaluate(self._request(self.data.ids[:self.n]))
        failed = [r for r in results if r.error]
        if failed:
            raise RuntimeError(f"{len(failed)} samples failed, e.g. {failed[0].error}")

    async def stop(self) -> None:
        await self.engine.close()


async def timed(runner, n: int) -> tuple[float, float]:
    """samples/s and this process's CPU ms per sample of one `runner.once()`."""
    cpu, started = time.process_time(), time.perf_counter()
    await runner.once()
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1000


async def measure(runners: dict[str, object], n: int, repeat: int) -> dict[str, list]:
    """Start every runner, then `repeat` rounds in which each runs once, in order (so the
    bare loop and an engine meet the same background load); every round's (rate, CPU)."""
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    for runner in runners.values():
        await runner.start()
    try:
        for _ in range(repeat):
            for name, runner in runners.items():
                rounds[name].append(await timed(runner, n))
    finally:
        for runner in runners.values():
            await runner.stop()
    return rounds


def median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summary(rounds: dict[str, list], name: str) -> tuple[float, float, float, float]:
    """Median samples/s, median CPU ms/sample, and the medians of the per-round ratios to
    the raw and the bare loop of the same round (robust to load that drifts between
    rounds)."""
    rates = [r for r, _ in rounds[name]]
    ratios = [[r / b for (r, _), (b, _) in zip(rounds[name], rounds[ref], strict=True)]
              for ref in ("raw", "bare")]
    return (median(rates), median([c for _, c in rounds[name]]), median(ratios[0]),
            median(ratios[1]))


def ray_engine(args: argparse.Namespace, n: int):
    import ray

    from synaray.engines.ray import RayEngine
    from synaray.runs.ray_connect import worker_runtime_env

    if not ray.is_initialized():
        # address="local": a bare init joins any cluster already running on the machine
        ray.init(address="local", num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False,
                 runtime_env=worker_runtime_env(), namespace="synaray", log_to_driver=False)
    per = max(1, args.concurrency // n)
    return RayEngine(num_evaluators=n, max_concurrency=per, storage=args.storage,
                     **({"chunk_size": args.chunk_size} if args.chunk_size else {}),
                     max_inflight=args.max_inflight)


def references(program, question: type, n: int, c: int) -> dict[str, object]:
    return {"raw": RawLoop(program, question, n, c), "bare": BareLoop(program, question, n, c)}


async def run(args: argparse.Namespace,
              api_base: str) -> dict[str, tuple[float, float, float, float]]:
    from synaray.engines import LocalEngine

    program, question, answer = await build_program(api_base, args.concurrency)
    names = args.only.split(",") if args.only else ["local", "ray-1", "ray-2", "ray-4"]
    names = [k for k in names if k not in ("raw", "bare")]
    extra_refs = {"bare-stream": BareStreamLoop} if "bare-stream" in names else {}
    names = [k for k in names if k not in extra_refs]
    n, c = args.examples, args.concurrency
    # raw, bare and local alternate in the same rounds; each Ray engine runs alone (its
    # workers would take CPU from the others), alternating with the raw and bare loops.
    table: dict[str, tuple[float, float, float, float]] = {}
    first = references(program, question, n, c)
    first.update({name: kind(program, question, n, c) for name, kind in extra_refs.items()})
    if "local" in names:
        first["local"] = EngineRun(program, LocalEngine(max_concurrency=c), question, answer,
                                   n, warmup=c)
    if "local-after" in names:
        plain, _, _ = await build_program(api_base, args.concurrency, loop_stop="after")
        first["local-after"] = EngineRun(plain, LocalEngine(max_concurrency=c), question,
                                         answer, n, warmup=c)
    rounds = await measure(first, n, args.repeat)
    table.update({name: summary(rounds, name) for name in first})
    for name in first:
        print_row(name, *table[name])
    for name in names:
        if name.startswith("ray-"):
            k = int(name.split("-")[1])
            engine = EngineRun(program, ray_engine(args, k), question, answer, n,
                               warmup=2 * c)
            rounds = await measure({**references(program, question, n, c), name: engine},
                                   n, args.repeat)
            table[name] = summary(rounds, name)
            print(f"  (next to {name}: raw {summary(rounds, 'raw')[0]:.1f}, bare "
                  f"{summary(rounds, 'bare')[0]:.1f} samples/s)", flush=True)
            print_row(name, *table[name])
    print("summary:", flush=True)
    for name in ["raw", "bare", *extra_refs, *names]:
        print_row(name, *table[name])
    return table


def print_row(name: str, rate: float, cpu_ms: float, to_raw: float, to_bare: float) -> None:
    """One table row; CPU is this (driver) process's, so for Ray it is the driver's share."""
    missed = name not in ("raw", "bare") and (to_raw < TARGET_RAW or to_bare < TARGET_BARE)
    print(f"{name:<8} {rate:9.1f} samples/s   {to_raw:5.2f} x raw   {to_bare:5.2f} x bare   "
          f"driver CPU {cpu_ms:5.2f} ms/sample{'  < target' if missed else ''}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "LATENCY"), help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", "-c", type=int, default=64)
    parser.add_argument("--examples", "-n", type=int, default=1200)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency, s")
    parser.add_argument("--only", default="", help="comma list: local,local-after,ray-1,"
                        "ray-2,ray-4 "
                        "(the raw and bare loops always run)")
    parser.add_argument("--transport", choices=["auto", "litellm", "http"], default="auto",
                        help="SYNARAY_LM_TRANSPORT for the engines (default: auto)")
    parser.add_argument("--chunk-size", type=int, default=0,
                        help="RayEngine chunk_size (default: the engine's rule)")
    parser.add_argument("--max-inflight", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed rounds per engine, each next to a bare-loop run; "
                             "medians are printed (shared machines)")
    parser.add_argument("--storage", default=os.path.join("/tmp", "synaray-bench-runs"))
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]))
        return
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["SYNARAY_LM_TRANSPORT"] = args.transport  # before Ray starts: workers inherit
    server, api_base = start_server(args.latency)
    try:
        print(f"C={args.concurrency} N={args.examples} latency={args.latency * 1000:.0f} ms "
              f"cores={os.cpu_count()} transport={args.transport} load={os.getloadavg()[0]:.2f}"
              f"  (ceiling C/latency = "
              f"{args.concurrency / args.latency:.0f}/s)", flush=True)
        asyncio.run(run(args, api_base))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
