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
from pathlib import Path
from typing import Any

from synaray.errors import ConfigError
from synaray.modules.symbolic import SymbolicDataModel
from synaray.program_payload import (
    FORMAT,
    SCHEMA_VERSION,
    program_from_payload,
    read_program_file,
    without_data_models,
    without_unsafe_data_models,
)
from synaray.saving import class_path, serialize_object
from synaray.utils.atomic_files import atomic_write_text

# The payload functions live in synaray.program_payload (engines use them without importing
# this package); they are re-exported here for code that imported them from this module.
__all__ = ["FORMAT", "SCHEMA_VERSION", "ProgramSerializationMixin", "atomic_write_text",
           "program_from_payload", "without_data_models", "without_unsafe_data_models"]


class ProgramSerializationMixin:
    """get_config / save / load / pickling for `Program` (`from_config` is on `Program`)."""

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

    # --- JSON payload ------------------------------------------------------------------
    def to_payload(self) -> dict:
        """Everything needed to rebuild this program: architecture, state, compile config."""
        from synaray.version import __version__

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
            CheckpointError: a missing or unreadable file, or not a saved program.
            ConfigError: an object refused in safe mode (named, with the file).

        The file is read by `synaray.program_payload.read_program_file`, the one reader of
        saved programs (also behind a config's `program.path` and `synaray evaluate`).
        """
        return read_program_file(filepath, custom_objects, safe_mode).program

    def __reduce__(self) -> tuple:
        # Unpickling rebuilds what this process (or a Ray driver) held: trusted.
        return (program_from_payload, (self.to_payload(), None, "payload", False))

