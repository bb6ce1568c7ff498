"""Symbolic data models: placeholders that record how a functional program is wired."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synaray.modules.module import Module

__all__ = ["Input", "SymbolicDataModel", "is_symbolic"]


class SymbolicDataModel:
    """The schema of a value that will flow through a program, and the module that makes it.

    Created by `Input(...)` and by calling a module on symbolic inputs; a `Program` walks
    these back from its outputs to find its modules.
    """

    def __init__(self, schema: dict, data_model: type | None = None,
                 producer: Module | None = None,
                 parents: list[SymbolicDataModel] | None = None,
                 name: str | None = None) -> None:
        self.schema = schema
        self.data_model = data_model
        self.producer = producer
        self.parents = list(parents or [])
        self.name = name

    def get_schema(self) -> dict:
        return self.schema

    def __repr__(self) -> str:
        title = self.schema.get("title", "DataModel")
        source = self.producer.name if self.producer is not None else "input"
        return f"<SymbolicDataModel {title} from={source}>"


def is_symbolic(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, SymbolicDataModel) for v in value)
    return isinstance(value, SymbolicDataModel)


def Input(data_model: type | None = None, schema: dict | None = None,
          name: str | None = None) -> SymbolicDataModel:
    """The entry point of a functional program: a placeholder for its input data.

    Args:
        data_model: a `DataModel` class describing the input.
        schema: alternatively, its JSON schema.
        name: optional name of the input.

    Example:
        >>> import synaray
        >>> class Query(synaray.DataModel):
        ...     query: str
        >>> synaray.Input(data_model=Query)
        <SymbolicDataModel Query from=input>
    """
    from synaray.errors import ConfigError

    if data_model is None and schema is None:
        raise ConfigError("Input() needs `data_model` (a DataModel class) or `schema`.")
    if schema is None:
        schema = data_model.get_schema()
    return SymbolicDataModel(schema=schema, data_model=data_model, name=name)
