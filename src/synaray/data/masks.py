"""Field masks on nested JSON and on JSON schemas, with Synalinks semantics.

Rules (each pinned by a test in `tests/data/test_masks.py`):

- A key matches a mask entry on its *base form*: a trailing `_<digits>` is removed and the
  last underscore-separated word is singularised, so the mask `answer` matches `answer`,
  `answers` and `answer_1`. Mask entries are reduced to their base form too.
- A pattern matches when `re.search(pattern, base_form(key))` finds something.
- On one side, a list and a pattern are OR-ed: a key matching either counts.
- Masks apply at every level of nested JSON, lists of objects included.
- `in_mask` keeps the matching keys. A nested object survives only if its own key matches
  (its contents are then masked in turn); a list survives if its key matches or if it holds
  objects (which are masked in turn). Scalars survive only if their key matches.
- `out_mask` drops the matching keys wherever they are, and leaves everything else.
- When both are given, `in_mask` runs first, then `out_mask`.
- The schema is masked with the data: properties and `required` follow the same rules,
  through `$ref`/`$defs`, array `items` and `anyOf`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

__all__ = [
    "apply_masks",
    "base_form",
    "in_mask_json",
    "in_mask_schema",
    "mask_schema",
    "out_mask_json",
    "out_mask_schema",
]

_NUMERIC_SUFFIX = re.compile(r"_\d+$")
_KEEP_S = ("ss", "us", "is", "ous")


def _singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(_KEEP_S):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


@lru_cache(maxsize=4096)
def base_form(key: str) -> str:
    """The form a key is matched on: `answers_2` -> `answer`, `categories` -> `category`.

    Example:
        >>> base_form("answers_12")
        'answer'
    """
    key = _NUMERIC_SUFFIX.sub("", key)
    head, sep, last = key.rpartition("_")
    return f"{head}{sep}{_singular(last)}"


class _Matcher:
    def __init__(self, mask: Sequence[str] | None, pattern: str | None) -> None:
        if isinstance(mask, str):
            mask = [mask]
        self.keys = frozenset(base_form(k) for k in (mask or ()))
        self.pattern = re.compile(pattern) if pattern else None

    def __bool__(self) -> bool:
        return bool(self.keys) or self.pattern is not None

    def __call__(self, key: str) -> bool:
        base = base_form(key)
        if base in self.keys:
            return True
        return bool(self.pattern and self.pattern.search(base))


def _in_mask_value(value: Any, match: _Matcher) -> Any:
    if isinstance(value, dict):
        return _in_mask_dict(value, match)
    if isinstance(value, list):
        return [_in_mask_value(item, match) for item in value]
    return value


def _holds_objects(value: list) -> bool:
    return any(isinstance(item, dict) for item in value)


def _in_mask_dict(json: dict, match: _Matcher) -> dict:
    out = {}
    for key, value in json.items():
        if match(key) or (isinstance(value, list) and _holds_objects(value)):
            out[key] = _in_mask_value(value, match)
    return out


def _out_mask_value(value: Any, match: _Matcher) -> Any:
    if isinstance(value, dict):
        return {k: _out_mask_value(v, match) for k, v in value.items() if not match(k)}
    if isinstance(value, list):
        return [_out_mask_value(item, match) for item in value]
    return value


def in_mask_json(json: dict, mask: Sequence[str] | None = None, pattern: str | None = None) -> dict:
    """Keep only the fields that match `mask` or `pattern`, at every level.

    Example:
        >>> in_mask_json({"thinking": "...", "answers": ["a"], "answer_1": "b"}, ["answer"])
        {'answers': ['a'], 'answer_1': 'b'}
    """
    match = _Matcher(mask, pattern)
    if not match:
        return copy.deepcopy(json)
    return _in_mask_dict(json, match)


def out_mask_json(json: dict, mask: Sequence[str] | None = None,
                  pattern: str | None = None) -> dict:
    """Drop the fields that match `mask` or `pattern`, at every level.

    Example:
        >>> out_mask_json({"thinking": "...", "answer": "b"}, ["thinking"])
        {'answer': 'b'}
    """
    match = _Matcher(mask, pattern)
    if not match:
        return copy.deepcopy(json)
    return _out_mask_value(json, match)


def apply_masks(json: dict, in_mask: Sequence[str] | None = None,
                out_mask: Sequence[str] | None = None, in_mask_pattern: str | None = None,
                out_mask_pattern: str | None = None) -> dict:
    """Apply `in_mask` (with its pattern) then `out_mask` (with its pattern)."""
    if in_mask or in_mask_pattern:
        json = in_mask_json(json, in_mask, in_mask_pattern)
    if out_mask or out_mask_pattern:
        json = out_mask_json(json, out_mask, out_mask_pattern)
    return json


# --- schemas ----------------------------------------------------------------------------

def _resolve(node: Any, defs: dict) -> Any:
    """Inline every `$ref` to `#/$defs/...` so that masking can see nested properties."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = defs.get(ref.split("/")[-1], {})
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve(merged, defs)
        return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    return node


def _is_object_schema(node: dict) -> bool:
    return isinstance(node.get("properties"), dict)


def _array_of_objects(node: dict) -> bool:
    items = node.get("items")
    if isinstance(items, dict) and _is_object_schema(items):
        return True
    return any(isinstance(alt, dict) and _array_of_objects(alt) for alt in node.get("anyOf", []))


def _map_schema_children(node: dict, fn) -> dict:
    """Apply `fn` to the object schemas reachable from `node` (items, anyOf)."""
    node = dict(node)
    if _is_object_schema(node):
        node = fn(node)
    if isinstance(node.get("items"), dict):
        node["items"] = _map_schema_children(node["items"], fn)
    if isinstance(node.get("anyOf"), list):
        node["anyOf"] = [_map_schema_children(a, fn) if isinstance(a, dict) else a
                         for a in node["anyOf"]]
    return node


def _in_mask_object_schema(node: dict, match: _Matcher) -> dict:
    props = {}
    for key, sub in node["properties"].items():
        if match(key) or _array_of_objects(sub):
            props[key] = _map_schema_children(sub, lambda n: _in_mask_object_schema(n, match))
    return _with_properties(node, props)


def _out_mask_object_schema(node: dict, match: _Matcher) -> dict:
    props = {
        key: _map_schema_children(sub, lambda n: _out_mask_object_schema(n, match))
        for key, sub in node["properties"].items() if not match(key)
    }
    return _with_properties(node, props)


def _with_properties(node: dict, props: dict) -> dict:
    node = dict(node)
    node["properties"] = props
    if "required" in node:
        node["required"] = [k for k in node["required"] if k in props]
    return node


def in_mask_schema(schema: dict, mask: Sequence[str] | None = None,
                   pattern: str | None = None) -> dict:
    """Mask a JSON schema the way `in_mask_json` masks its data ($refs are inlined)."""
    match = _Matcher(mask, pattern)
    schema = _resolve(schema, schema.get("$defs", {}))
    if not match:
        return schema
    return _map_schema_children(schema, lambda n: _in_mask_object_schema(n, match))


def out_mask_schema(schema: dict, mask: Sequence[str] | None = None,
                    pattern: str | None = None) -> dict:
    """Mask a JSON schema the way `out_mask_json` masks its data ($refs are inlined)."""
    match = _Matcher(mask, pattern)
    schema = _resolve(schema, schema.get("$defs", {}))
    if not match:
        return schema
    return _map_schema_children(schema, lambda n: _out_mask_object_schema(n, match))


def mask_schema(schema: dict, in_mask: Sequence[str] | None = None,
                out_mask: Sequence[str] | None = None, in_mask_pattern: str | None = None,
                out_mask_pattern: str | None = None) -> dict:
    """Apply `in_mask` then `out_mask` to a schema, as `apply_masks` does to data."""
    if in_mask or in_mask_pattern:
        schema = in_mask_schema(schema, in_mask, in_mask_pattern)
    if out_mask or out_mask_pattern:
        schema = out_mask_schema(schema, out_mask, out_mask_pattern)
    return schema
