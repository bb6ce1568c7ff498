"""`Module`: the base of every building block of a program."""

from __future__ import annotations

import re
from typing import Any

from synaray.data.data_model import JsonDataModel, to_json_data_model
from synaray.errors import ConfigError
from synaray.modules.symbolic import SymbolicDataModel, is_symbolic

__all__ = ["Module", "merge_inputs"]


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def merge_inputs(inputs: Any) -> JsonDataModel | None:
    """One JsonDataModel from a value or a list of values (fields merged, None if any is None)."""
    if isinstance(inputs, (list, tuple)):
        parts = [to_json_data_model(v) for v in inputs]
        if any(p is None for p in parts):
            return None
        json: dict = {}
        props: dict = {}
        required: list = []
        for part in parts:
            json.update(part.get_json())
            schema = part.get_schema()
            props.update(schema.get("properties", {}))
            required += [r for r in schema.get("required", []) if r not in required]
        return JsonDataModel(json=json, schema={"type": "object", "properties": props,
                                                "required": required})
    return to_json_data_model(inputs)


class Module:
    """A step of a program: takes JSON data models in, gives one out.

    Subclasses write `async call(inputs, training=False)` (real data) and
    `compute_output_schema(input_schema)` (for functional wiring). Trainable modules also
    write `get_state()` / `set_state(state)`: the part of them an optimizer searches.

    Calling a module on `SymbolicDataModel`s (from `Input`) records the wiring and returns a
    `SymbolicDataModel`; calling it on data runs it.

    Args:
        name: the module's name. It keys the module's trainable state, so it is fixed once
            the module is part of a program (a program names unnamed modules in graph order).
        description: optional description.
        trainable: whether optimizers may change its state.

    Example:
        >>> import asyncio, synaray
        >>> class Echo(Module):
        ...     async def call(self, inputs, training=False):
        ...         return inputs
        >>> asyncio.run(Echo()({"a": 1})).get_json()
        {'a': 1}
    """

    def __init__(self, name: str | None = None, description: str | None = None,
                 trainable: bool = True) -> None:
        self._name = name
        self.description = description
        self.trainable = trainable

    @property
    def name(self) -> str:
        return self._name or _snake_case(type(self).__name__)

    @property
    def has_name(self) -> bool:
        return self._name is not None

    def _set_name(self, name: str) -> None:
        self._name = name

    async def __call__(self, inputs: Any, training: bool = False) -> Any:
        if is_symbolic(inputs):
            return self._symbolic_call(inputs)
        return await self.call(merge_inputs(inputs), training=training)

    def _symbolic_call(self, inputs: Any) -> SymbolicDataModel:
        parents = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not all(isinstance(p, SymbolicDataModel) for p in parents):
            raise ConfigError(
                f"Module {self.name!r} was called on a mix of symbolic and real inputs; call it "
                "either on Input(...) placeholders (to build a program) or on data."
            )
        merged: dict = {"type": "object", "properties": {}, "required": []}
        for parent in parents:
            schema = parent.get_schema()
            merged["properties"].update(schema.get("properties", {}))
            merged["required"] += schema.get("required", [])
            if len(parents) == 1:
                merged = schema
        self.input_schema = merged
        schema, data_model = self.compute_output_schema(merged)
        return SymbolicDataModel(schema=schema, data_model=data_model, producer=self,
                                 parents=parents)

    def compute_output_schema(self, input_schema: dict) -> tuple[dict, type | None]:
        """The schema (and DataModel class, if known) of the output. Default: same as input."""
        return input_schema, None

    async def call(self, inputs: JsonDataModel | None, training: bool = False) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement `call`.")

    # --- trainable state -------------------------------------------------------------
    def get_state(self) -> dict | None:
        """The trainable state as JSON, or None for a module with nothing to train."""
        return None

    def set_state(self, state: dict) -> None:
        if state:
            raise ConfigError(f"Module {self.name!r} has no trainable state to set.")

    # --- config ----------------------------------------------------------------------
    def get_config(self) -> dict:
        return {"name": self._name, "description": self.description,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict) -> Module:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"
