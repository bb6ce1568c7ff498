"""Config error messages: the file, the dotted key path, what was expected, what was received.

`validation_error(exc, source, root)` turns a pydantic `ValidationError` into one
`ConfigError`; `config_error(...)` builds one directly; `unknown_key(...)` names the allowed
keys and suggests the closest one (difflib).

Example:
    >>> str(config_error("run.yaml", "training.batch_size", "an integer >= 1", -3))
    'run.yaml: training.batch_size: expected an integer >= 1; received -3 (integer)'
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from synaray.errors import ConfigError

__all__ = ["config_error", "dotted", "suggest", "unknown_key", "validation_error"]

MAX_ERRORS = 5
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean",
               dict: "mapping", list: "list", type(None): "null"}
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list",
    "dict_type": "a mapping (key: value settings)",
    "model_type": "a mapping (key: value settings)",
    "model_attributes_type": "a mapping (key: value settings)",
}


def dotted(loc: Sequence[Any]) -> str:
    """`("metrics", 1, "name")` -> `metrics[1].name`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def received(value: Any) -> str:
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{shown} ({kind})"


def config_error(source: str, path: str, expected: str, value: Any = ...,
                 note: str = "") -> ConfigError:
    """`source: path: expected ...; received ... (type)` as a ConfigError."""
    text = f"{source}: {path}: expected {expected}"
    if value is not ...:
        text += f"; received {received(value)}"
    return ConfigError(text + (f" {note}" if note else ""))


def suggest(name: str, choices: Iterable[str]) -> str:
    """` Did you mean 'x'?` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_key(source: str, path: str, key: str, allowed: Iterable[str],
                what: str = "key", owner: str = "") -> ConfigError:
    """`source: path.key: unknown setting of owner; allowed settings: ... Did you mean ...?`"""
    allowed = sorted(allowed)
    of = f" of {owner}" if owner else ""
    return ConfigError(f"{source}: {path}.{key}: unknown {what}{of}; allowed {what}s: "
                       f"{', '.join(allowed)}.{suggest(key, allowed)}")


# --- pydantic errors ----------------------------------------------------------------------
def _fields_at(root: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    """The field names of the model found at `loc` inside `root` (None if not a model)."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation, part)
        if annotation is None:
            return None
    model = _model_in(annotation)
    return list(model.model_fields) if model is not None else None


def _unwrap(annotation: Any, part: Any) -> Any:
    model = _model_in(annotation)
    if model is not None and isinstance(part, str):
        field = model.model_fields.get(part)
        return field.annotation if field is not None else None
    for arg in _args(annotation):
        origin = typing.get_origin(arg)
        if origin is dict and isinstance(part, str):
            return typing.get_args(arg)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(arg)[0]
    return None


def _args(annotation: Any) -> tuple:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in _args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _expected(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than": "<",
              "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"a value {bounds[kind]} {limit}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '?')}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("expected ")
    msg = str(error["msg"])
    return msg[len("Input should be "):] if msg.startswith("Input should be ") else msg


def _one(error: dict, source: str, root: type[BaseModel], overridden: set[str]) -> str:
    loc = tuple(error["loc"])
    path = dotted(loc)
    origin = " (set by an override)" if path in overridden else ""
    if error["type"] == "extra_forbidden":
        parent = loc[:-1]
        allowed = _fields_at(root, parent) or []
        where = dotted(parent) if parent else "top level"
        return (f"{path}{origin}: unknown key {loc[-1]!r} in {where}; allowed keys: "
                f"{', '.join(allowed)}.{suggest(str(loc[-1]), allowed)}")
    if error["type"] == "missing":
        return f"{path}: missing required key"
    value = error.get("input", ...)
    text = f"{path}{origin}: " if loc else ""
    text += f"expected {_expected(error)}"
    if error["type"] != "value_error" or not isinstance(value, dict):
        text += f"; received {received(value)}"
    return text


def validation_error(exc: ValidationError, source: str, root: type[BaseModel],
                     overridden: Iterable[str] = ()) -> ConfigError:
    """One ConfigError for a pydantic ValidationError, its problems on one line.

    `overridden`: dotted keys set by overrides, marked as such in the message.
    """
    errors = exc.errors(include_url=False)
    parts = [_one(e, source, root, set(overridden)) for e in errors[:MAX_ERRORS]]
    more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
    return ConfigError(f"{source}: " + "; ".join(parts) + more)
