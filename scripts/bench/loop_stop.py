"""Bench: one looping answer of the local model, read to the end vs closed when it loops.

SmolLM2-135M answers the prompt below (the looping answer of issue 16) with
`{"answer": "The answer is: The answer is: ...` until `max_tokens`. The same call is made
with `loop_stop="after"` (the whole answer is generated, then found to loop) and
`loop_stop="stream"` (the answer is streamed and the connection closed once its tail
repeats), alternately, `--rounds` times. Printed per mode: median completion tokens and
wall time, and their ratio in the same run; then the wall time of a 4-token request sent
right after a streamed call is closed, next to the same request after a call read to the end (if the
server kept generating the abandoned answer, the short request would wait for it).

Example:
    $ python scripts/bench/loop_stop.py                    # starts the local server
    $ python scripts/bench/loop_stop.py --rounds 3 --max-tokens 512
    $ python scripts/bench/loop_stop.py --api-base http://127.0.0.1:8080/v1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time

import synaray
from synaray.lm import LanguageModel

PROMPT = [{"role": "user", "content": "Complete: The answer is: The answer is: The answer is:"}]
SHORT = [{"role": "user", "content": "Say hi."}]


class Answer(synaray.DataModel):
    answer: str


async def one(lm: LanguageModel, mode: str, max_tokens: int) -> tuple[int, float, str]:
    start = time.perf_counter()
    result = await lm(PROMPT, data_model=Answer, max_tokens=max_tokens, loop_stop=mode)
    return result.completion_tokens, time.perf_counter() - start, result.error or "ok"


async def short(lm: LanguageModel) -> float:
    start = time.perf_counter()
    await lm(SHORT, max_tokens=4, loop_stop="after")
    return time.perf_counter() - start


async def run(args: argparse.Namespace, model: str, api_base: str) -> None:
    lm = LanguageModel(model, api_base=api_base, cache=False, retries=0, timeout=1800)
    await short(lm)  # warm up: the server loads the prompt cache, the client its pool
    tokens: dict[str, list[int]] = {"after": [], "stream": []}
    seconds: dict[str, list[float]] = {"after": [], "stream": []}
    idle, following = [], []
    for _ in range(args.rounds):
        for mode in ("after", "stream"):
            n, s, error = await one(lm, mode, args.max_tokens)
            tokens[mode].append(n)
            seconds[mode].append(s)
            print(f"  {mode:6s} {n:4d} tokens {s:7.2f} s  {error[:150]}", flush=True)
            if mode == "stream":
                following.append(await short(lm))
            else:
                idle.append(await short(lm))
    print(f"{'mode':8s} {'tokens':>7s} {'wall s':>8s}")
    for mode in ("after", "stream"):
        print(f"{mode:8s} {statistics.median(tokens[mode]):7.0f} "
              f"{statistics.median(seconds[mode]):8.2f}")
    ratios = [a / b for a, b in zip(seconds["after"], seconds["stream"], strict=True)]
    token_ratios = [a / max(b, 1) for a, b in zip(tokens["after"], tokens["stream"],
                                                  strict=True)]
    print(f"stream saves: x{statistics.median(token_ratios):.1f} tokens, "
          f"x{statistics.median(ratios):.1f} wall time (median of per-round ratios)")
    print(f"4-token request after a closed stream: {statistics.median(following):.2f} s; "
          f"after a call read to the end: {statistics.median(idle):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--api-base", default=None,
                        help="an OpenAI-compatible server (default: start the local model)")
    parser.add_argument("--model", default="openai/smollm2-135m")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads of the started server")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        api_base = args.api_base
        if api_base is None:
            from synaray.lm.local.server import local_lm_server

            server = stack.enter_context(local_lm_server(n_threads=args.threads))
            api_base = server.api_base
            print(f"local server: {api_base}, {server.n_threads} threads", flush=True)
        asyncio.run(run(args, args.model, api_base))


if __name__ == "__main__":
    main()
