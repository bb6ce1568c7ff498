"""Bench: the cost of one `ask()` of a steady-state `PopulationSearch` against the size of
the training set.

A steady search asks after every tell, so what an ask costs is paid hundreds of times per
run. The same seeded search (the synthetic engine of the optimizer tests: no model runs) is
run for `--tells` told requests on a small and on a large training set, with and without a
budget preset, told one request at a time (as `run_steady_state` does) or all at once;
printed per case: the mean CPU time of an ask and of a tell (per request), and the ratio
large / small in the same run (about 1 when an ask does not scan the training set). CPU
time, not wall time: the figures hold on a loaded machine.

Example:
    $ python scripts/bench/steady_ask_cost.py
    $ python scripts/bench/steady_ask_cost.py --small 200 --large 2000 --tells 200
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the tests' synthetic engine

from tests.optimizers import driver

from synaray.optimizers import PopulationSearch
from synaray.testing import FakeLanguageModel


async def run(n_train: int, tells: int, preset: bool, batch_size: int,
              one_at_a_time: bool) -> tuple[float, float]:
    """Mean CPU seconds per ask and per tell over `tells` tells of a seeded steady search.

    `one_at_a_time`: the loop of `run_steady_state` (one request told, then an ask; the
    other requests stay out), else every request asked is evaluated and told before the
    next ask (the generation-synchronous driver: each ask checks every member).
    """
    knobs = {"lm_calls": 100_000} if preset else {}
    search = PopulationSearch(language_model=FakeLanguageModel(driver.echo_writer),
                              population_size=8, seed=1, steady_state=True, **knobs)
    engine = driver.setup(search, n_train=n_train, n_val=100, batch_size=batch_size,
                          epochs=3)
    order, out = random.Random(0), []
    ask_time = tell_time = 0.0
    asks = told = 0
    while not search.finished and told < tells:
        start = time.process_time()
        out += search.ask()
        ask_time += time.process_time() - start
        asks += 1
        if not out:
            break
        if one_at_a_time:
            sent = [out.pop(order.randrange(min(3, len(out))))]
        else:
            sent, out = out, []
        results = await engine.evaluate(sent)
        start = time.process_time()
        await search.tell(results)
        tell_time += time.process_time() - start
        told += len(sent)
    return ask_time / max(1, asks), tell_time / max(1, told)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200, help="training ids, small case")
    parser.add_argument("--large", type=int, default=2000, help="training ids, large case")
    parser.add_argument("--tells", type=int, default=300, help="requests told per search")
    parser.add_argument("--batch-size", type=int, default=20)
    args = parser.parse_args()
    for one_at_a_time in (True, False):
        for preset in (False, True):
            (small_ask, small_tell), (large_ask, large_tell) = [
                await run(n, args.tells, preset, args.batch_size, one_at_a_time)
                for n in (args.small, args.large)]
            label = (("one request told per ask" if one_at_a_time else "all told per ask")
                     + (", budget preset" if preset else ", no preset"))
            print(f"{label}: ask {small_ask * 1e3:.2f} ms CPU ({args.small} train ids) vs "
                  f"{large_ask * 1e3:.2f} ms ({args.large}): ratio "
                  f"{large_ask / small_ask:.1f}; tell (per request) {small_tell * 1e3:.2f} ms "
                  f"vs {large_tell * 1e3:.2f} ms: ratio {large_tell / small_tell:.1f}")

if __name__ == "__main__":
    asyncio.run(main())
