"""A tiny yes/no task answered by a `FakeLanguageModel` of adjustable skill, for sweep tests.

`build(skill=...)` puts `skill=<s>` in the Generator's instructions; `skilled_handler` reads
it back from the prompt and answers correctly on a fixed share `s` of the questions (chosen
by a hash of the question), so a run's validation reward is about `skill` whatever the
optimizer does. `write_data(folder)` writes the train/validation JSONL files.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Literal

import synaray
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel

_SKILL = re.compile(r"skill=([0-9.]+)")


class Item(synaray.DataModel):
    q: str


class Label(synaray.DataModel):
    answer: Literal["yes", "no"]


def truth(q: str) -> str:
    return "yes" if int(q) % 2 == 0 else "no"


@register_synaray_serializable(package="tests_sweeps")  # Program.load (safe mode) finds it
def skilled_handler(messages, schema):
    text = "\n".join(str(m.get("content", "")) for m in messages)
    match = _SKILL.search(text)
    skill = float(match.group(1)) if match else 0.0
    q = json.loads(messages[-1]["content"])["q"]
    right = zlib.crc32(q.encode()) % 100 < skill * 100
    answer = truth(q)
    return {"answer": answer if right else ("no" if answer == "yes" else "yes")}


async def build(skill: float = 0.5) -> synaray.Program:
    lm = FakeLanguageModel(skilled_handler)
    inputs = synaray.Input(data_model=Item)
    outputs = await synaray.Generator(data_model=Label, language_model=lm,
                                      instructions=f"Say yes if q is even. skill={skill}")(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name="parity")


def write_data(folder: Path, n_train: int = 8, n_val: int = 8) -> dict[str, str]:
    paths = {}
    for split, start, n in (("train", 0, n_train), ("validation", 100, n_val)):
        path = Path(folder) / f"{split}.jsonl"
        path.write_text("".join(json.dumps({"id": f"{split}-{i}", "q": str(i),
                                            "answer": truth(str(i))}) + "\n"
                                for i in range(start, start + n)))
        paths[split] = str(path)
    return paths


def sweep_config(folder: Path, parameters: dict, **sweep: object) -> dict:
    """A sweep mapping over this task (random_few_shot, local engine, 1 epoch)."""
    data = write_data(folder)
    return {
        "program": {"builder": "helpers.sweep_program:build", "args": {"skill": 0.5}},
        "data": {**data, "input_model": "helpers.sweep_program:Item",
                 "output_model": "helpers.sweep_program:Label"},
        "reward": "exact_match",
        "optimizer": {"name": "random_few_shot", "population_size": 2},
        "training": {"epochs": 1, "batch_size": 4},
        "engine": {"type": "local", "max_concurrency": 4},
        "storage": str(Path(folder) / "runs"),
        "sweep": {"method": "grid", "parameters": parameters, **sweep},
    }
