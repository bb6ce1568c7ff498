"""The saved-program payload: its format, and the program it describes.

A saved program (a `.json` file, a checkpoint's `best_program.json`, what Ray ships to an
evaluator) is one JSON document::

    {"format": "synaray.program", "schema_version": 1, "class_name": "Program",
     "config": {...architecture...}, "state": {...trainable state...},
     "compile_config": {...reward, optimizer, metrics...} | null}

This module sits below `synaray.programs`, next to `synaray.saving`: engines, bulk
evaluation and checkpoint readers rebuild programs through `program_from_payload` without
importing the programs package, which itself imports the trainers (`Program.fit`). The
program class is found from the payload's `class_name` the way `synaray.saving` finds every
object a saved file names: by its module path, imported on first use.

Example:
    >>> without_data_models({"inputs": [{"schema": {}, "data_model": "app.models:Query"}]})
    {'inputs': [{'schema': {}, 'data_model': None}]}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from synaray.errors import CheckpointError, CheckpointVersionError
from synaray.saving import data_model_is_safe, resolve_safe_mode, safe_mode_scope

__all__ = ["FORMAT", "SCHEMA_VERSION", "program_from_payload", "without_data_models",
           "without_unsafe_data_models"]

FORMAT = "synaray.program"
SCHEMA_VERSION = 1

#: `class_name` -> where the class is defined; any other class name loads as `Program`
#: (a user subclass is saved with its architecture, which `Program` rebuilds).
_PROGRAM_CLASSES = {"Program": ("synaray.programs.program", "Program"),
                    "Sequential": ("synaray.programs.sequential", "Sequential")}


def _program_class(class_name: Any) -> Any:
    module, name = _PROGRAM_CLASSES.get(class_name, _PROGRAM_CLASSES["Program"])
    return getattr(importlib.import_module(module), name)


def program_from_payload(payload: dict, custom_objects: dict | None = None,
                         source: str = "payload", safe_mode: bool | None = None) -> Any:
    """The program a saved payload (`Program.to_payload`, a program file's content) describes.

    Args:
        payload: the parsed JSON.
        custom_objects: see `Program.load`.
        source: what to name in messages (the file).
        safe_mode: True for a payload read from a file (see `Program.load`); None: the
            enclosing `synaray.saving.safe_mode_scope` decides, else the payload is trusted
            (made by this process or its driver).

    Raises:
        CheckpointError: not a saved program.
        CheckpointVersionError: written by a newer synaray.
    """
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a saved synaray program (format {FORMAT!r}).")
    version = payload.get("schema_version", 0)
    if version > SCHEMA_VERSION:
        raise CheckpointVersionError(
            f"{source} was written with program schema version {version}; this synaray reads "
            f"up to {SCHEMA_VERSION}. Upgrade synaray."
        )
    klass = _program_class(payload.get("class_name"))
    with safe_mode_scope(resolve_safe_mode(safe_mode, default=False),
                         custom_objects=custom_objects, source=source):
        program = klass.from_config(payload["config"], custom_objects=custom_objects)
        program.set_state(payload.get("state") or {})
        if payload.get("compile_config"):
            program.compile_from_config(payload["compile_config"], custom_objects)
    return program


def _drop_data_models(payload: Any, drop: Callable[[str], bool]) -> Any:
    if isinstance(payload, list):
        return [_drop_data_models(v, drop) for v in payload]
    if not isinstance(payload, dict):
        return payload
    return {k: None if k == "data_model" and isinstance(v, str) and drop(v)
            else _drop_data_models(v, drop) for k, v in payload.items()}


def without_unsafe_data_models(payload: Any) -> Any:
    """A copy of a payload checked in safe mode without the data model references that safe
    mode did not import (they become null: the schema is used), so that a process that
    rebuilds it trusted (a Ray actor) imports nothing the file named."""
    return _drop_data_models(payload, lambda path: not data_model_is_safe(path))


def without_data_models(payload: Any) -> Any:
    """A copy of a payload with every data model reference null: what decides a program's
    answers (schemas, state) without the class names, which safe mode may have dropped."""
    return _drop_data_models(payload, lambda path: True)
