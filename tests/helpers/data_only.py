"""Data for runs described only by a config (`data.inputs`/`data.outputs`, no Python module).

Rows are `{id, input, choices, target}`: "is N even or odd?" with its allowed answers. The
fake model (`parity_handler`, or `parity_reply` behind an `OpenAIStub`) answers "odd" to
everything without few-shot examples and right once the prompt holds one, so a few-shot
search visibly improves the program.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers.openai_stub import StubReply
from synaray.saving import register_synaray_serializable


def parity_rows(numbers: range) -> list[dict]:
    return [{"id": f"p{n}", "input": f"Is {n} even or odd?", "choices": ["even", "odd"],
             "target": "even" if n % 2 == 0 else "odd"} for n in numbers]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _answer(messages: list[dict], schema: dict | None) -> dict:
    text = messages[-1]["content"]
    number = int(re.search(r"Is (\d+)", text).group(1))
    has_examples = any(m["role"] == "assistant" for m in messages)
    answer = ("even" if number % 2 == 0 else "odd") if has_examples else "odd"
    out = {"answer": answer}
    if schema is not None and "thinking" in schema.get("properties", {}):
        out = {"thinking": f"{number} mod 2", **out}
    return out


@register_synaray_serializable(package="tests_data_only")
def parity_handler(messages: list[dict], schema: dict | None) -> dict:
    """A FakeLanguageModel handler."""
    return _answer(messages, schema)


def parity_reply(path: str, body: dict) -> StubReply:
    """An OpenAIStub handler (the schema's `thinking` field is read from response_format)."""
    fmt = (body.get("response_format") or {}).get("json_schema") or {}
    return StubReply(json.dumps(_answer(body["messages"], fmt.get("schema"))))
