"""A small deterministic task whose best program still fails on some examples.

`stubborn_handler` answers "is n not a multiple of 3?": right on multiples of 3; right on
the others once the prompt holds >= 2 examples or the rule in its instructions; always wrong
on "hard" numbers (n % 5 == 4) and a failed call (an error) on n % 11 == 10. So a search
improves, yet its best program keeps failing known examples.
"""

import json
from typing import Literal

import synaray
from synaray.optimizers import PopulationSearch
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel

RULE = "Multiples of three are no; the rest are yes."


class Number(synaray.DataModel):
    q: str


class Label(synaray.DataModel):
    answer: Literal["yes", "no"]


def truth(n: int) -> str:
    return "no" if n % 3 == 0 else "yes"


def is_hard(n: int) -> bool:
    return n % 5 == 4 and n % 11 != 10


def is_broken(n: int) -> bool:
    return n % 11 == 10


@register_synaray_serializable(package="tests")
def stubborn_handler(messages, schema):
    n = int(json.loads(messages[-1]["content"])["q"])
    if is_broken(n):
        return ValueError(f"cannot answer {n}")
    if is_hard(n):
        return {"answer": "yes" if truth(n) == "no" else "no"}
    n_examples = (len(messages) - 2) // 2
    if n % 3 == 0 or n_examples >= 2 or RULE in messages[0]["content"]:
        return {"answer": truth(n)}
    return {"answer": "no"}


@register_synaray_serializable(package="tests_observability")
def rule_writer(messages, schema):
    return {"instructions": RULE}


def make_data(n):
    xs = [Number(q=str(i)) for i in range(n)]
    ys = [Label(answer=truth(i)) for i in range(n)]
    return xs, ys


async def make_program(seed=0, population_size=4, reflection=True):
    lm = FakeLanguageModel(stubborn_handler)
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="thirds")
    writer = FakeLanguageModel(rule_writer, model="fake/writer") if reflection else None
    program.compile(reward="exact_match",
                    optimizer=PopulationSearch(language_model=writer,
                                               population_size=population_size, seed=seed,
                                               quantile_fraction=0.5),
                    metrics=["accuracy"])
    return program
