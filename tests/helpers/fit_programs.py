"""A custom program module for run-config tests: named in configs as
`helpers.fit_programs:build_thirds`, answered by a FakeLanguageModel (no server).

The fake model answers "is n not a multiple of 3?" right on multiples of 3 always, and on
the rest only once the prompt holds at least 2 few-shot examples, so a few-shot search
visibly improves the program.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import synaray
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel


class Number(synaray.DataModel):
    q: str


class Label(synaray.DataModel):
    answer: Literal["yes", "no"]


@register_synaray_serializable(package="tests_cli")
def thirds_handler(messages, schema):
    n = int(json.loads(messages[-1]["content"])["q"])
    n_examples = (len(messages) - 2) // 2
    truth = "no" if n % 3 == 0 else "yes"
    return {"answer": truth if n % 3 == 0 or n_examples >= 2 else "no"}


async def build_thirds(latency_s: float = 0.0) -> synaray.Program:
    lm = FakeLanguageModel(thirds_handler, latency_s=latency_s)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name="thirds")


def write_rows(path: Path, numbers: range) -> str:
    with path.open("w") as fh:
        for n in numbers:
            fh.write(json.dumps({"id": f"n{n}", "q": str(n),
                                 "answer": "no" if n % 3 == 0 else "yes"}) + "\n")
    return str(path)


def thirds_config(folder: Path, engine: str = "local", epochs: int = 2,
                  **extra: object) -> dict:
    """A run config (dict) over JSONL files written to `folder`: 24 train, 9 val, 9 test."""
    config = {
        "program": {"builder": "helpers.fit_programs:build_thirds"},
        "data": {"train": write_rows(folder / "train.jsonl", range(24)),
                 "validation": write_rows(folder / "val.jsonl", range(100, 109)),
                 "test": write_rows(folder / "test.jsonl", range(200, 209)),
                 "input_model": "helpers.fit_programs:Number",
                 "output_model": "helpers.fit_programs:Label"},
        "reward": "exact_match",
        "metrics": ["accuracy"],
        "optimizer": {"name": "random_few_shot", "population_size": 3, "nb_min_examples": 2},
        "training": {"epochs": epochs, "batch_size": 6, "seed": 3},
        "engine": {"type": engine, "max_concurrency": 4},
        "storage": str(folder / "runs"),
    }
    config.update(extra)
    return config
