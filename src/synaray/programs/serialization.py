"""Program config, JSON save/load and pickling (Ray ships programs through the same path).

A saved program is one JSON file::

    {"format": "synaray.program", "schema_version": 1, "class_name": "Program",
     "config": {...architecture...}, "state": {...trainable state...},
     "compile_config": {...reward, optimizer, metrics...} | null}

It never holds API keys: models take them from the environment where the program runs.

Loading a file is safe by default (`synaray.saving` safe mode): the file may name only
synaray's own classes and functions, registered objects and `custom_objects`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synaray.errors import CheckpointError, CheckpointVersionError, ConfigError
from synaray.modules.symbolic import Input, SymbolicDataModel
from synaray.saving import (
    class_path,
    data_model_is_safe,
    deserialize_object,
    import_data_model,
    resolve_safe_mode,
    safe_mode_scope,
    serialize_object,
)

__all__ = ["FORMAT", "SCHEMA_VERSION", "ProgramSerializationMixin", "atomic_write_text",
           "program_from_payload", "without_data_models", "without_unsafe_data_models"]

FORMAT = "synaray.program"
SCHEMA_VERSION = 1


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and `os.replace`: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ProgramSerializationMixin:
    """get_config / from_config / save / load / pickling for `Program`."""

    def get_config(self) -> dict:
        ids: dict[int, int] = {}

        def sym_id(sym: SymbolicDataModel) -> int:
            return ids.setdefault(id(sym), len(ids))

        modules = self.modules
        index = {id(m): n for n, m in enumerate(modules)}
        inputs = [{"id": sym_id(s), "schema": s.get_schema(), "name": s.name,
                   "data_model": class_path(s.data_model)} for s in self._inputs]
        nodes = [{"module": index[id(node.module)], "parents": [sym_id(p) for p in node.parents],
                  "output": sym_id(node.output)} for node in self._nodes]
        return {"name": self._name, "description": self.description,
                "trainable": self.trainable, "inputs": inputs,
                "modules": [serialize_object(m) for m in modules], "nodes": nodes,
                "outputs": [sym_id(o) for o in self._outputs],
                "multi_input": self._multi_input, "multi_output": self._multi_output}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Any:
        from synaray.programs.program import Program

        try:
            modules = [deserialize_object(m, custom_objects) for m in config["modules"]]
            symbols: dict[int, SymbolicDataModel] = {}
            inputs = []
            for spec in config["inputs"]:
                data_model = import_data_model(spec.get("data_model"), spec["schema"])
                sym = Input(data_model=data_model, schema=spec["schema"], name=spec.get("name"))
                symbols[spec["id"]] = sym
                inputs.append(sym)
            for node in config["nodes"]:
                parents = [symbols[p] for p in node["parents"]]
                module = modules[node["module"]]
                symbols[node["output"]] = module._symbolic_call(
                    parents if len(parents) > 1 else parents[0])
            outputs = [symbols[o] for o in config["outputs"]]
        except (KeyError, IndexError, TypeError) as exc:
            raise ConfigError(f"Malformed program config: missing or bad entry {exc}.") from exc
        return Program(inputs=inputs if config.get("multi_input") else inputs[0],
                       outputs=outputs if config.get("multi_output") else outputs[0],
                       name=config.get("name"), description=config.get("description"),
                       trainable=config.get("trainable", True))

    # --- JSON payload ------------------------------------------------------------------
    def to_payload(self) -> dict:
        """Everything needed to rebuild this program: architecture, state, compile config."""
        from synaray import __version__

        return {"format": FORMAT, "schema_version": SCHEMA_VERSION,
                "synaray_version": __version__, "class_name": type(self).__name__,
                "config": self.get_config(), "state": self.get_state(),
                "compile_config": self.get_compile_config()}

    def save(self, filepath: str | Path) -> None:
        """Save as JSON (atomically). Reload with `Program.load(filepath)`."""
        filepath = Path(filepath)
        if filepath.suffix != ".json":
            raise ConfigError(f"Invalid value for argument `filepath`. Received: {filepath}. "
                              "Expected a path ending in .json.")
        atomic_write_text(filepath, json.dumps(self.to_payload(), indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, filepath: str | Path, custom_objects: dict | None = None,
             safe_mode: bool | None = None) -> Any:
        """Load a program saved with `save` (or a `best_program.json` checkpoint).

        `filepath` may also be a pyarrow filesystem URI, such as a RayEngine run's
        `s3://bucket/prefix/run/best_program.json` (`engine.best_program_uri`).

        Args:
            filepath: the JSON file.
            custom_objects: name -> class or function for objects the file names that are
                not synaray's (by class or function name, or registered name).
            safe_mode: None or True (the default, unless
                `synaray.saving.enable_unsafe_deserialization()` was called): the file may
                name only synaray's own objects, registered ones and `custom_objects`;
                anything else is refused before it is imported. False: trust the file
                (import the modules it names).

        Raises:
            CheckpointError: a missing file or not a saved program.
            ConfigError: an object refused in safe mode (named, with the file).
        """
        try:
            payload = json.loads(_read_text(filepath))
        except FileNotFoundError:
            raise CheckpointError(f"Program file not found: {filepath}") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{filepath} is not valid JSON: {exc}") from exc
        return program_from_payload(payload, custom_objects, source=str(filepath),
                                    safe_mode=resolve_safe_mode(safe_mode, default=True))

    def __reduce__(self) -> tuple:
        # Unpickling rebuilds what this process (or a Ray driver) held: trusted.
        return (program_from_payload, (self.to_payload(), None, "payload", False))


def _read_text(filepath: str | Path) -> str:
    """A local file's text, or (for "scheme://..." URIs) a file read through pyarrow."""
    if isinstance(filepath, str) and "://" in filepath and not filepath.startswith("file://"):
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(filepath)
        with fs.open_input_stream(path) as src:
            return src.read().decode("utf-8")
    if isinstance(filepath, str) and filepath.startswith("file://"):
        filepath = filepath[len("file://"):]
    return Path(filepath).read_text(encoding="utf-8")


def program_from_payload(payload: dict, custom_objects: dict | None = None,
                         source: str = "payload", safe_mode: bool | None = None) -> Any:
    """The program a saved payload (`to_payload`, a program JSON file's content) describes.

    Args:
        payload: the parsed JSON.
        custom_objects: see `Program.load`.
        source: what to name in messages (the file).
        safe_mode: True for a payload read from a file (see `Program.load`); None: the
            enclosing `synaray.saving.safe_mode_scope` decides, else the payload is trusted
            (made by this process or its driver).
    """
    from synaray.programs.program import Program
    from synaray.programs.sequential import Sequential

    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a saved synaray program (format {FORMAT!r}).")
    version = payload.get("schema_version", 0)
    if version > SCHEMA_VERSION:
        raise CheckpointVersionError(
            f"{source} was written with program schema version {version}; this synaray reads "
            f"up to {SCHEMA_VERSION}. Upgrade synaray."
        )
    klass = Sequential if payload.get("class_name") == "Sequential" else Program
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
