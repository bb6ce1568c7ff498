"""How many tokens an answer may take, from the JSON schema it must follow.

`LanguageModel(max_tokens="auto")` (the default) sends `max_tokens_for_schema(schema)`
with a structured call, so an answer that can only be one of a few labels, a number or a
boolean stops after a few dozen tokens instead of running (or looping) to a fixed 512.
Free text keeps a generous budget. The estimate is deliberately high (about 2 characters
per token, whitespace and a code fence allowed for): a budget that cuts a valid answer
costs a repair call, one that is too large costs nothing unless the model loops.

Example:
    >>> max_tokens_for_schema({"type": "object", "properties": {
    ...     "answer": {"enum": ["plausible", "implausible"]}}})
    64
    >>> max_tokens_for_schema({"type": "object", "properties": {"answer": {"type": "string"}}})
    533
"""

from __future__ import annotations

import json
from typing import Any

from synaray.data.schema_utils import dereference_schema

__all__ = ["DEFAULT_MAX_TOKENS", "MAX_TOKENS_CAP", "MIN_MAX_TOKENS", "max_tokens_for_schema"]

DEFAULT_MAX_TOKENS = 512  # no schema (plain text), or free text in a schema
MIN_MAX_TOKENS = 64  # room for whitespace, a code fence or a short preamble
MAX_TOKENS_CAP = 2048
_LIST_CAP = 1024
_DEFAULT_ITEMS = 16
_MAX_DEPTH = 8
_SCALARS = {"integer": 12, "number": 16, "boolean": 4, "null": 4}


def _text_tokens(text: str) -> int:
    return len(text) // 2 + 2


def _label_tokens(values: list) -> int:
    return max((_text_tokens(json.dumps(v, ensure_ascii=False)) for v in values), default=4)


def _string_tokens(node: dict) -> int:
    limit = node.get("maxLength")
    if isinstance(limit, int) and limit >= 0:
        return min(limit // 2 + 4, DEFAULT_MAX_TOKENS)
    return DEFAULT_MAX_TOKENS


def _object_tokens(node: dict, depth: int) -> int:
    props = node.get("properties")
    if not isinstance(props, dict) or not props:
        return DEFAULT_MAX_TOKENS  # a free-form map
    total = 4  # braces
    for key, sub in props.items():
        total += _text_tokens(key) + 4 + _node_tokens(sub, depth + 1)  # key, colon, comma
    return total


def _array_tokens(node: dict, depth: int) -> int:
    count = node.get("maxItems")
    count = count if isinstance(count, int) and count >= 0 else _DEFAULT_ITEMS
    prefix = node.get("prefixItems") if isinstance(node.get("prefixItems"), list) else []
    items = node.get("items") if isinstance(node.get("items"), dict) else {}
    total = 4 + sum(_node_tokens(p, depth + 1) + 2 for p in prefix)
    total += max(count - len(prefix), 0) * (_node_tokens(items, depth + 1) + 2)
    return min(total, _LIST_CAP)


def _node_tokens(node: Any, depth: int = 0) -> int:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return DEFAULT_MAX_TOKENS
    if "const" in node:
        return _label_tokens([node["const"]])
    if isinstance(node.get("enum"), list):
        return _label_tokens(node["enum"])
    branches = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
    if isinstance(branches, list) and branches:
        return max(_node_tokens(b, depth + 1) for b in branches)
    kind = node.get("type")
    if isinstance(kind, list):
        return max((_node_tokens({**node, "type": k}, depth + 1) for k in kind),
                   default=DEFAULT_MAX_TOKENS)
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "string":
        return _string_tokens(node)
    if kind == "array":
        return _array_tokens(node, depth)
    if kind == "object" or "properties" in node:
        return _object_tokens(node, depth)
    return DEFAULT_MAX_TOKENS  # `{}` / Any: any JSON value


def max_tokens_for_schema(schema: dict | None) -> int:
    """A `max_tokens` large enough for any answer that fits `schema`, within limits.

    Labels (`enum`, `const`, `Literal`) take their longest label, numbers and booleans a
    few tokens, strings with `maxLength` about half that many tokens, free strings 512,
    lists `maxItems` (else 16) items, at most 1024; plus the JSON around them. The result
    is at least 64 and at most 2048; without a schema it is 512.
    """
    if not isinstance(schema, dict):
        return DEFAULT_MAX_TOKENS
    try:
        resolved = dereference_schema(schema)
    except (RecursionError, KeyError, TypeError, ValueError):  # a schema we cannot expand
        return DEFAULT_MAX_TOKENS
    estimate = _node_tokens(resolved) + 8  # margin: whitespace between tokens
    return max(MIN_MAX_TOKENS, min(estimate, MAX_TOKENS_CAP))
