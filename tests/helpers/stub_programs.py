"""Run-config programs answered by a loopback `OpenAIStub` (a real `LanguageModel`).

`build_thirds_on(language_model)` is the `helpers.fit_programs` task (is n not a multiple
of 3?) on the config's model section, so a config's `model.api_base`, `model.api_key_env`
and `model.model` decide where requests go and which key they carry. `thirds_reply` is the
stub handler that answers it (right on multiples of 3, else only with >= 2 demos).

Example:
    >>> reply = thirds_reply("/v1/chat/completions",
    ...                      {"messages": [{"role": "user", "content": '{"q": "3"}'}]})
    >>> reply.content
    '{"answer": "no"}'
"""

from __future__ import annotations

import json
from pathlib import Path

import synaray
from helpers.fit_programs import Label, Number, write_rows
from helpers.openai_stub import StubReply

__all__ = ["build_thirds_on", "stub_config", "thirds_reply"]


def thirds_reply(path: str, body: dict) -> StubReply:
    messages = body.get("messages") or []
    try:
        n = int(json.loads(messages[-1]["content"])["q"])
    except (ValueError, KeyError, IndexError, TypeError):  # a preflight "Say OK."
        return StubReply("OK")
    n_examples = sum(1 for m in messages if m.get("role") == "assistant")
    truth = "no" if n % 3 == 0 else "yes"
    return StubReply(json.dumps({"answer": truth if n % 3 == 0 or n_examples >= 2
                                 else "no"}))


async def build_thirds_on(language_model: synaray.LanguageModel) -> synaray.Program:
    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=language_model)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name="thirds_stub")


def stub_config(folder: Path, model: dict, engine: str = "local", epochs: int = 1,
                n_train: int = 12, **extra: object) -> dict:
    """A run config (dict) on JSONL files in `folder`, with the model section `model`."""
    config = {
        "program": {"builder": "helpers.stub_programs:build_thirds_on"},
        "data": {"train": write_rows(folder / "train.jsonl", range(n_train)),
                 "validation": write_rows(folder / "val.jsonl", range(100, 106)),
                 "input_model": "helpers.fit_programs:Number",
                 "output_model": "helpers.fit_programs:Label"},
        "model": {"cache": False, "retries": 0, **model},
        "reward": "exact_match",
        "metrics": ["accuracy"],
        "optimizer": {"name": "random_few_shot", "population_size": 2, "nb_min_examples": 2},
        "training": {"epochs": epochs, "batch_size": 6, "seed": 3},
        "engine": {"type": engine, "max_concurrency": 4},
        "storage": str(folder / "runs"),
    }
    config.update(extra)
    return config
