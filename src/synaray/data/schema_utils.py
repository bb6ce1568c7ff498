"""JSON-schema helpers: inline `$ref`s, rebuild a pydantic model from a schema, hash a schema.

A saved program keeps only the JSON schemas of its data models; `model_from_schema` turns
such a schema back into a pydantic model of a given base class
(`synaray.data.data_model.data_model_from_schema` uses it with `DataModel`) so that loaded
programs validate LM output exactly as the original did.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Optional

import pydantic

from synaray.errors import ConfigError

__all__ = ["canonical_json", "dereference_schema", "model_from_schema", "schema_hash"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form hashed for ids and cache keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def schema_hash(schema: dict) -> str:
    return hashlib.sha256(canonical_json(schema).encode()).hexdigest()[:16]


def dereference_schema(schema: dict) -> dict:
    """Return `schema` with every local `$ref` inlined and `$defs` removed."""
    from synaray.data.masks import _resolve

    return _resolve(schema, schema.get("$defs", {}))


_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                            "null": type(None)}


def _python_type(node: dict, name: str, base: type) -> Any:
    if "enum" in node:
        return Literal[tuple(node["enum"])]
    if "const" in node:
        return Literal[node["const"]]
    if "anyOf" in node:
        options = [_python_type(alt, name, base) for alt in node["anyOf"]]
        non_null = [o for o in options if o is not type(None)]
        if len(non_null) == 1 and len(options) == 2:
            return Optional[non_null[0]]  # noqa: UP045 - built at run time
        union: Any = options[0]
        for option in options[1:]:
            union = union | option
        return union
    kind = node.get("type")
    if isinstance(kind, list):
        return _python_type({"anyOf": [{**node, "type": k} for k in kind]}, name, base)
    if kind == "array":
        items = node.get("items") or {}
        return list[_python_type(items, name + "Item", base) if items else Any]
    if kind == "object":
        if isinstance(node.get("properties"), dict):
            return _model_from_object(node, name, base)
        return dict[str, Any]
    if kind in _SCALARS:
        return _SCALARS[kind]
    return Any


def _model_from_object(node: dict, name: str, base: type) -> type:
    required = set(node.get("required", []))
    fields: dict[str, Any] = {}
    for key, sub in node["properties"].items():
        annotation = _python_type(sub, name + key.title().replace("_", ""), base)
        info: dict[str, Any] = {}
        if "description" in sub:
            info["description"] = sub["description"]
        if key in required:
            default = ...
        else:
            default = sub.get("default")
        fields[key] = (annotation, pydantic.Field(default, **info))
    title = node.get("title") or name
    try:
        model = pydantic.create_model(title.replace(" ", ""), __base__=base, **fields)
    except Exception as exc:  # pydantic raises several types here
        raise ConfigError(
            f"Cannot build a data model from the schema titled {title!r}: {exc}") from exc
    if node.get("description"):
        model.__doc__ = node["description"]
    return model


def model_from_schema(schema: dict, base: type[pydantic.BaseModel]) -> type:
    """A new subclass of `base` that validates data against the object schema `schema`.

    Example:
        >>> Model = model_from_schema({"title": "Answer", "type": "object",
        ...     "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
        ...     pydantic.BaseModel)
        >>> Model(answer="yes").answer
        'yes'
    """
    schema = dereference_schema(schema)
    if not isinstance(schema.get("properties"), dict):
        raise ConfigError(
            "Expected an object schema with `properties` to build a data model; received a "
            f"schema of type {schema.get('type')!r}."
        )
    return _model_from_object(schema, schema.get("title") or "DynamicDataModel", base)
