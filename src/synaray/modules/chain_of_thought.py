"""`ChainOfThought`: a Generator that writes its reasoning before its answer."""

from __future__ import annotations

from typing import Any

from synaray.data.data_model import DataModel, data_model_from_schema
from synaray.data.schema_utils import dereference_schema
from synaray.modules.generator import Generator

__all__ = ["ChainOfThought"]

_THINKING = {"type": "string", "description": "Your step by step thinking"}


def _with_thinking(schema: dict) -> dict:
    schema = dereference_schema(schema)
    props = schema.get("properties", {})
    return {**schema, "title": schema.get("title", "Answer") + "WithThinking",
            "properties": {"thinking": _THINKING, **props},
            "required": ["thinking", *schema.get("required", [])]}


class ChainOfThought(Generator):
    """A Generator whose output gets a `thinking` field placed before the answer fields.

    Takes the same arguments as `Generator`; `data_model`/`schema` describe the answer only.

    Example:
        >>> import synaray
        >>> class Answer(synaray.DataModel):
        ...     answer: str
        >>> cot = synaray.ChainOfThought(data_model=Answer,
        ...                              language_model=synaray.LanguageModel("openai/m"))
        >>> list(cot.schema["properties"])
        ['thinking', 'answer']
    """

    def __init__(self, data_model: type[DataModel] | None = None, schema: dict | None = None,
                 **kwargs: Any) -> None:
        base = schema if schema is not None else (
            data_model.get_schema() if data_model is not None else None)
        self.base_schema = base
        full = _with_thinking(base) if base is not None else None
        super().__init__(data_model=data_model_from_schema(full) if full else None, schema=full,
                         **kwargs)
        self._base_data_model = data_model

    def get_config(self) -> dict:
        config = super().get_config()
        config["schema"] = self.base_schema
        config["data_model"] = None
        return config
