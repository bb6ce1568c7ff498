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

`read_program_file` is the one reader of a saved program file (local or a pyarrow URI):
`Program.load`, a config's `program.path` and `bulk_evaluate` / `synaray evaluate` all go
through it. It builds the program once, in safe mode unless the caller or an enclosing
`synaray.saving.safe_mode_scope` trusts the file, and returns that program with the payload
a trusted rebuild may use (a Ray actor's).

Example:
    >>> without_data_models({"inputs": [{"schema": {}, "data_model": "app.models:Query"}]})
    {'inputs': [{'schema': {}, 'data_model': None}]}
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synaray.errors import CheckpointError, CheckpointVersionError
from synaray.saving import data_model_is_safe, resolve_safe_mode, safe_mode_scope

__all__ = ["FORMAT", "SCHEMA_VERSION", "SavedProgram", "program_from_payload",
           "read_program_file", "without_data_models", "without_unsafe_data_models"]

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
    if not isinstance(payload.get("config"), dict):
        raise CheckpointError(f"{source} is a saved synaray program without its architecture "
                              "(expected a `config` object).")
    klass = _program_class(payload.get("class_name"))
    with safe_mode_scope(resolve_safe_mode(safe_mode, default=False),
                         custom_objects=custom_objects, source=source):
        program = klass.from_config(payload["config"], custom_objects=custom_objects)
        program.set_state(payload.get("state") or {})
        if payload.get("compile_config"):
            program.compile_from_config(payload["compile_config"], custom_objects)
    return program


@dataclass(frozen=True)
class SavedProgram:
    """A saved program file, read and built once by `read_program_file`.

    Attributes:
        program: the program the file describes, built (in safe mode unless trusted).
        payload: the file's JSON as a process may rebuild it trusted (a Ray actor): read in
            safe mode, it keeps no data model reference that safe mode did not import.
        source: the file, as messages name it (credentials in a URI hidden).

    Example:
        >>> saved = read_program_file("runs/demo/best_program.json")  # doctest: +SKIP
        >>> saved.program.name, saved.payload["format"]  # doctest: +SKIP
        ('demo', 'synaray.program')
    """

    program: Any
    payload: dict
    source: str


def read_program_file(filepath: str | os.PathLike, custom_objects: dict | None = None,
                      safe_mode: bool | None = None) -> SavedProgram:
    """Read a saved program file (`Program.save`, a run's `best_program.json`) and build it.

    Args:
        filepath: a local path, a `file://` URI or a pyarrow filesystem URI
            (`s3://bucket/prefix/run/best_program.json`).
        custom_objects: name -> class or function for objects the file names that are not
            synaray's (see `Program.load`).
        safe_mode: None (the enclosing `synaray.saving.safe_mode_scope`'s choice, else True
            unless `enable_unsafe_deserialization()` was called): the file may name only
            synaray's own objects, registered ones and `custom_objects`. False: trust it.

    Raises:
        CheckpointError: the file is missing or unreadable, not JSON, or not a saved synaray
            program (the message names the file and what was expected).
        CheckpointVersionError: written by a newer synaray.
        ConfigError: the file names an object that safe mode refuses (named, with the file).
    """
    source = _display(filepath)
    text = _read_text(filepath, source)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source} is not valid JSON ({exc}); expected a saved synaray "
                              "program (the JSON file `Program.save` writes).") from exc
    safe = resolve_safe_mode(safe_mode, default=True)
    program = program_from_payload(payload, custom_objects, source=source, safe_mode=safe)
    return SavedProgram(program, without_unsafe_data_models(payload) if safe else payload,
                        source)


def _display(filepath: str | os.PathLike) -> str:
    text = os.fspath(filepath)
    if "://" not in text:
        return text
    from synaray.runs.storage import redact_uri

    return redact_uri(text)


def _read_text(filepath: str | os.PathLike, source: str) -> str:
    """A local file's text, or a URI's (read through pyarrow's filesystems)."""
    text = os.fspath(filepath)
    try:
        if "://" in text and not text.startswith("file://"):
            import pyarrow.fs as pafs

            try:
                fs, path = pafs.FileSystem.from_uri(text)
            except ValueError as exc:  # pyarrow.ArrowInvalid: an unknown scheme, a bad URI
                raise CheckpointError(f"Cannot open program file {source}: {exc}") from None
            with fs.open_input_stream(path) as src:
                data = src.read()
        else:
            data = Path(text.removeprefix("file://")).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"Program file not found: {source}") from None
    except OSError as exc:
        reason = exc.strerror or exc  # the OS's words without the path again
        raise CheckpointError(f"Cannot read program file {source}: {reason}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{source} is not a UTF-8 text file ({exc}); expected a saved "
                              "synaray program (the JSON file `Program.save` writes).") from None


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
