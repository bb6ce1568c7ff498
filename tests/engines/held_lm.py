"""A fake LM that answers as `demo_sensitive_handler` but holds while a file exists.

The file is named by the environment variable SYNARAY_TEST_HOLD (given to the Ray actors
through the runtime env). Tests use it to pause a run mid-way by a mechanism (the file),
not a timing, kill things around it, and let it go on.
"""

import asyncio
import os
import sys
import time

import synaray
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel
from trainers.conftest import DemoSearch, Label, Number, demo_sensitive_handler

HOLD_VAR = "SYNARAY_TEST_HOLD"


@register_synaray_serializable(package="tests")
def held_handler(messages, schema):
    hold = os.environ.get(HOLD_VAR)
    while hold and os.path.exists(hold):
        time.sleep(0.02)
    return demo_sensitive_handler(messages, schema)


async def make_held_program(seed=7):
    # a little latency: the driver's reaction to generation 2 (creating the hold file)
    # comes long before the run could end; the test checks it did not end either way
    lm = FakeLanguageModel(held_handler, latency_s=0.02)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="held")
    program.compile(reward="exact_match", optimizer=DemoSearch(seed=seed),
                    metrics=["accuracy"])
    return program


class HoldAt(synaray.callbacks.Callback):
    """Creates the hold file after generation `at` (on the driver)."""

    def __init__(self, at, path):
        super().__init__()
        self.at, self.path = at, path

    def on_batch_end(self, step, logs=None):
        if step >= self.at and not os.path.exists(self.path):
            with open(self.path, "w") as fh:
                fh.write(str(step))


async def drive(address, storage, run_name, hold, detach=False):
    """The driver process of the tests: a RayEngine fit joined to the test cluster."""
    from synaray.engines.ray import RayEngine
    from trainers.conftest import make_data

    xs, ys = make_data(36)
    program = await make_held_program()
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)),
           HOLD_VAR: hold}
    engine = RayEngine(address=address, num_evaluators=2, storage=storage, run_name=run_name,
                       runtime_env={"env_vars": env})
    await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.25, verbose=False,
                      engine=engine, callbacks=[HoldAt(2, hold)])


if __name__ == "__main__":
    asyncio.run(drive(*sys.argv[1:5]))
