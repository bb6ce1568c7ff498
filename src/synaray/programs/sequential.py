"""`Sequential`: a program that is a plain chain of modules."""

from __future__ import annotations

from typing import Any

from synaray.errors import ConfigError
from synaray.modules.module import Module
from synaray.modules.symbolic import Input, SymbolicDataModel
from synaray.programs.program import Program
from synaray.saving import deserialize_object, serialize_object

__all__ = ["Sequential"]


class Sequential(Program):
    """Modules applied one after the other.

    Args:
        modules: the chain; the first item may be an `Input(...)` placeholder, otherwise
            give `input_data_model` (or `input_schema`).
        input_data_model: the DataModel class of the input.
        input_schema: alternatively, its JSON schema.
        name, description: see `Program`.

    Example:
        >>> import synaray
        >>> class Query(synaray.DataModel):
        ...     query: str
        >>> class Answer(synaray.DataModel):
        ...     answer: str
        >>> program = synaray.Sequential(
        ...     [synaray.Input(data_model=Query),
        ...      synaray.Generator(data_model=Answer,
        ...                        language_model=synaray.LanguageModel("openai/m"))],
        ...     name="qa")
        >>> [m.name for m in program.modules]
        ['generator']
    """

    def __init__(self, modules: list[Any], input_data_model: type | None = None,
                 input_schema: dict | None = None, name: str | None = None,
                 description: str | None = None, trainable: bool = True) -> None:
        modules = list(modules)
        if modules and isinstance(modules[0], SymbolicDataModel):
            inputs = modules.pop(0)
        elif input_data_model is not None or input_schema is not None:
            inputs = Input(data_model=input_data_model, schema=input_schema)
        else:
            raise ConfigError("Sequential needs an Input(...) first in `modules`, or "
                              "`input_data_model`.")
        if not modules or not all(isinstance(m, Module) for m in modules):
            raise ConfigError("Sequential `modules` must be a non-empty list of modules "
                              "(after the optional Input).")
        outputs = inputs
        for module in modules:
            outputs = module._symbolic_call(outputs)
        super().__init__(inputs=inputs, outputs=outputs, name=name, description=description,
                         trainable=trainable)

    def get_config(self) -> dict:
        return {"name": self._name, "description": self.description,
                "trainable": self.trainable, "input_schema": self._inputs[0].get_schema(),
                "modules": [serialize_object(m) for m in self.modules]}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        modules = [deserialize_object(m, custom_objects) for m in config["modules"]]
        return cls(modules, input_schema=config["input_schema"], name=config.get("name"),
                   description=config.get("description"),
                   trainable=config.get("trainable", True))
