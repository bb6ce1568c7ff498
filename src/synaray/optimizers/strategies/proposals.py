"""Grounded instruction proposals: new instructions written from a summary of the data.

MIPROv2's proposer writes instructions from a description of the program and a summary of
the training data; GEPA's (and `reflection.py`'s) rewrite them from failures. This module is
the first kind: `data_summary` describes the training examples (how many, the input fields,
the answers seen and how often), `grounded_messages` asks an LM for instructions that state
the task, the input and the answer format (the answer set when it is small), and the caller
sends them with `reflection.propose_instructions`, which keeps the guards: a proposal that
echoes the schema, is a few words long or copies the examples it was shown is rejected.

Example:
    >>> rows = [({"q": "1"}, {"answer": "yes"}), ({"q": "3"}, {"answer": "no"}),
    ...         ({"q": "4"}, {"answer": "yes"})]
    >>> print(data_summary(rows))
    3 training examples. Input fields: q. Answers seen (3 examples): "yes" (2), "no" (1).
    >>> messages = grounded_messages("generator", "Answer.", rows[:2], data_summary(rows))
    >>> [m["role"] for m in messages], "Answers seen" in messages[1]["content"]
    (['system', 'user'], True)
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from synaray.modules.prompts import DEFAULT_INSTRUCTIONS

__all__ = ["data_summary", "grounded_messages", "shown_examples"]

_MAX_ANSWERS = 12
_CLIP = 400

_GROUNDED_SYSTEM = (
    "You write the instructions of one step of a language-model program. The step receives "
    "its instructions as a system prompt, then one input, and must answer in the expected "
    "format. You are shown a summary of the training data and a few examples of inputs with "
    "their expected outputs. Write instructions that say what the task is, what the input "
    "holds and what the answer must be (the allowed answers, when there are few). Do not "
    "copy the examples: the instructions must work for any input of the same kind. Answer "
    'with a JSON object {"instructions": "..."} and nothing else.')


def _json(value: Any) -> Any:
    return value.get_json() if hasattr(value, "get_json") else value


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _CLIP else text[:_CLIP] + " ...(clipped)"


def _answer_key(y: Any) -> str:
    y = _json(y)
    if isinstance(y, dict) and len(y) == 1:
        y = next(iter(y.values()))
    if isinstance(y, list) and y and all(isinstance(v, str) for v in y):
        y = y[0]  # accepted answers: the first one stands for the example
    return y if isinstance(y, str) else json.dumps(y, ensure_ascii=False, sort_keys=True)


def data_summary(rows: list[tuple[Any, Any]]) -> str:
    """A few lines about the training rows `(x, y)`: size, input fields, answers seen."""
    xs = [_json(x) for x, _ in rows]
    fields = sorted({k for x in xs if isinstance(x, dict) for k in x})
    answers = Counter(_answer_key(y) for _, y in rows if y is not None)
    parts = [f"{len(rows)} training examples.",
             f"Input fields: {', '.join(fields) or '(none)'}."]
    if answers:
        if len(answers) <= _MAX_ANSWERS:
            seen = ", ".join(f"{json.dumps(a, ensure_ascii=False)} ({n})"
                             for a, n in answers.most_common())
            parts.append(f"Answers seen ({sum(answers.values())} examples): {seen}.")
        else:
            parts.append(f"{len(answers)} distinct answers: free-form.")
    return " ".join(parts)


def shown_examples(rows: list[tuple[Any, Any]]) -> str:
    """The examples as the prompt shows them (also what the copy check compares with)."""
    blocks = []
    for n, (x, y) in enumerate(rows, 1):
        blocks.append(f"Example {n}\nInput: {_text(_json(x))}\nExpected output: "
                      f"{_text(_json(y))}")
    return "\n\n".join(blocks)


def grounded_messages(module: str, instructions: str | None, rows: list[tuple[Any, Any]],
                      summary: str) -> list[dict]:
    """The prompt asking for instructions of `module` grounded in the data summary."""
    user = (f"Step: {module}\nCurrent instructions:\n<<<\n"
            f"{instructions or DEFAULT_INSTRUCTIONS}\n>>>\n\nData summary: {summary}\n\n"
            f"{shown_examples(rows)}\n\nWrite the instructions.")
    return [{"role": "system", "content": _GROUNDED_SYSTEM},
            {"role": "user", "content": user}]
