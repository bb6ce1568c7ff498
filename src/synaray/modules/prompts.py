"""How a Generator turns instructions, few-shot examples and inputs into chat messages.

The format is deliberately plain (a short system message, then one user/assistant turn per
example, then the input) because it has to work for a 135M-parameter local model as well as
for large hosted ones: small models copy the shape of the examples far better than they
follow long schema descriptions.
"""

from __future__ import annotations

import json
from typing import Any

from synaray.data.schema_utils import dereference_schema
from synaray.lm.field_descriptions import shown_description

__all__ = ["DEFAULT_INSTRUCTIONS", "build_messages", "describe_fields"]

DEFAULT_INSTRUCTIONS = "Complete the task for the given input."


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field_line(key: str, node: dict) -> str:
    parts = [f"- {key}"]
    if "enum" in node:
        parts.append("(one of " + ", ".join(_dumps(v) for v in node["enum"]) + ")")
    elif "type" in node:
        parts.append(f"({node['type']})")
    description = shown_description(key, node)
    if description:  # one that only restates the name is left out (small models copy it)
        parts.append(f": {description}")
    return " ".join(parts)


def describe_fields(schema: dict) -> str:
    """One line per top-level field of an object schema: name, type or choices, description.

    A description that only restates the field name ("The answer" for `answer`) is left out
    (see `synaray.lm.field_descriptions`).

    Example:
        >>> describe_fields({"properties": {"answer": {"type": "string",
        ...                                            "description": "The answer"}}})
        '- answer (string)'
    """
    schema = dereference_schema(schema)
    return "\n".join(_field_line(k, v) for k, v in schema.get("properties", {}).items())


def build_messages(inputs: dict, output_schema: dict, instructions: str | None,
                   examples: list[dict], input_schema: dict | None = None) -> list[dict]:
    """Chat messages for one call.

    Args:
        inputs: the input JSON.
        output_schema: the JSON schema the answer must follow.
        instructions: the task instructions (the trainable text), or None for a default.
        examples: few-shot examples, each `{"inputs": {...}, "outputs": {...}}`.
        input_schema: if given, the input fields are described too.
    """
    system = [instructions or DEFAULT_INSTRUCTIONS]
    if input_schema is not None:
        system.append("Input fields:\n" + describe_fields(input_schema))
    system.append("Answer with a JSON object with these fields:\n" + describe_fields(output_schema))
    messages = [{"role": "system", "content": "\n\n".join(system)}]
    for example in examples:
        messages.append({"role": "user", "content": _dumps(example["inputs"])})
        messages.append({"role": "assistant", "content": _dumps(example["outputs"])})
    messages.append({"role": "user", "content": _dumps(inputs)})
    return messages
