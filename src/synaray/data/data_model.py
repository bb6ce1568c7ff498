"""`DataModel` (typed, pydantic) and `JsonDataModel` (plain JSON plus its schema).

Programs pass `JsonDataModel`s between modules: they carry the data as a dict and the JSON
schema that describes it, so a program loaded from JSON (with no Python classes) works the
same as the one that was built in code. `DataModel` is what users write.
"""

from __future__ import annotations

import copy
import json
import weakref
from collections.abc import Iterator
from typing import Any

import pydantic
from pydantic import ConfigDict

from synaray.data.masks import apply_masks, mask_schema
from synaray.data.schema_utils import model_from_schema
from synaray.errors import DataError

__all__ = ["DataModel", "Field", "JsonDataModel", "data_model_from_schema", "to_json_data_model"]

Field = pydantic.Field

# DataModel class -> its JSON schema (weak keys: classes made on the fly can go away).
_SCHEMAS: weakref.WeakKeyDictionary[type, dict] = weakref.WeakKeyDictionary()


class DataModel(pydantic.BaseModel):
    """A typed record: the inputs or outputs of a program or module. Extra fields are refused.

    Example:
        >>> import synaray
        >>> class Query(synaray.DataModel):
        ...     query: str = synaray.Field(description="The user query")
        >>> Query(query="What is 2+2?").get_json()
        {'query': 'What is 2+2?'}
        >>> Query.get_schema()["properties"]["query"]["description"]
        'The user query'
    """

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def get_schema(cls) -> dict:
        """The JSON schema of this model (pydantic's, `$defs` kept).

        Computed once per class (pydantic takes about 1 ms, and every sample of a run asks
        for it several times); each call returns its own copy.
        """
        schema = _SCHEMAS.get(cls)
        if schema is None:
            schema = cls.model_json_schema()
            _SCHEMAS[cls] = schema
        return copy.deepcopy(schema)

    @classmethod
    def prettify_schema(cls) -> str:
        return json.dumps(cls.get_schema(), indent=2)

    def get_json(self) -> dict:
        """The data as plain JSON-compatible values."""
        return self.model_dump(mode="json")

    def prettify_json(self) -> str:
        return json.dumps(self.get_json(), indent=2, ensure_ascii=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.get_json().get(key, default)

    def keys(self) -> list[str]:
        return list(type(self).model_fields)

    def to_json_data_model(self) -> JsonDataModel:
        return JsonDataModel(json=self.get_json(), schema=self.get_schema())


class JsonDataModel:
    """JSON data together with the JSON schema that describes it.

    Args:
        json: the data, a dict.
        schema: its JSON schema (an object schema).
        data_model: alternatively a `DataModel` instance or class to take both from.
        name: optional name, kept for display.

    Example:
        >>> from synaray.data import JsonDataModel
        >>> x = JsonDataModel(json={"answer": "4", "thinking": "2+2"},
        ...                   schema={"type": "object", "properties": {
        ...                       "answer": {"type": "string"}, "thinking": {"type": "string"}}})
        >>> x.get("answer"), x.keys()
        ('4', ['answer', 'thinking'])
        >>> x.masked(in_mask=["answer"]).get_json()
        {'answer': '4'}
    """

    __slots__ = ("_json", "_schema", "name")

    def __init__(self, json: dict | None = None, schema: dict | None = None,
                 data_model: Any = None, name: str | None = None) -> None:
        if data_model is not None:
            if isinstance(data_model, DataModel):
                json = data_model.get_json() if json is None else json
                schema = data_model.get_schema() if schema is None else schema
            elif isinstance(data_model, type) and issubclass(data_model, DataModel):
                schema = data_model.get_schema() if schema is None else schema
            else:
                raise DataError(
                    f"Expected `data_model` to be a DataModel instance or class; received "
                    f"{type(data_model).__name__}."
                )
        if json is None:
            json = {}
        if not isinstance(json, dict):
            raise DataError(f"Expected `json` to be a dict; received {type(json).__name__}.")
        self._json = json
        self._schema = schema if schema is not None else _schema_of_json(json)
        self.name = name

    def get_json(self) -> dict:
        return self._json

    def get_schema(self) -> dict:
        return self._schema

    def get(self, key: str, default: Any = None) -> Any:
        return self._json.get(key, default)

    def keys(self) -> list[str]:
        return list(self._json.keys())

    def values(self) -> list[Any]:
        return list(self._json.values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self._json.items())

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __contains__(self, key: object) -> bool:
        return key in self._json

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonDataModel):
            return self._json == other._json
        if isinstance(other, DataModel):
            return self._json == other.get_json()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        title = self._schema.get("title", "JsonDataModel")
        return f"<JsonDataModel {title} keys={self.keys()}>"

    def prettify_json(self) -> str:
        return json.dumps(self._json, indent=2, ensure_ascii=False)

    def masked(self, in_mask=None, out_mask=None, in_mask_pattern=None,
               out_mask_pattern=None) -> JsonDataModel:
        """A copy with the masks applied to both the data and the schema."""
        return JsonDataModel(
            json=apply_masks(self._json, in_mask, out_mask, in_mask_pattern, out_mask_pattern),
            schema=mask_schema(self._schema, in_mask, out_mask, in_mask_pattern,
                               out_mask_pattern),
            name=self.name,
        )

    def to_data_model(self, data_model: type[DataModel] | None = None) -> DataModel:
        """Validate into a `DataModel` (the given class, or one rebuilt from the schema)."""
        if data_model is None:
            data_model = data_model_from_schema(self._schema)
        try:
            return data_model.model_validate(self._json)
        except pydantic.ValidationError as exc:
            raise DataError(f"Data does not fit {data_model.__name__}: {exc}") from exc

    def __deepcopy__(self, memo: dict) -> JsonDataModel:
        return JsonDataModel(copy.deepcopy(self._json, memo), copy.deepcopy(self._schema, memo),
                             name=self.name)

    def __getstate__(self) -> dict:
        return {"json": self._json, "schema": self._schema, "name": self.name}

    def __setstate__(self, state: dict) -> None:
        self._json, self._schema, self.name = state["json"], state["schema"], state["name"]


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _schema_of_value(value: Any) -> dict:
    if isinstance(value, dict):
        return _schema_of_json(value)
    if isinstance(value, list):
        return {"type": "array", "items": _schema_of_value(value[0]) if value else {}}
    for py, name in _JSON_TYPES.items():
        if type(value) is py:
            return {"type": name}
    return {}


def _schema_of_json(json: dict) -> dict:
    return {"type": "object",
            "properties": {k: _schema_of_value(v) for k, v in json.items()},
            "required": list(json)}


_MODELS: dict[str, type[DataModel]] = {}


def data_model_from_schema(schema: dict) -> type[DataModel]:
    """Build (and cache) a `DataModel` subclass that validates data against `schema`.

    Example:
        >>> Model = data_model_from_schema({"title": "Answer", "type": "object",
        ...     "properties": {"answer": {"type": "string"}}, "required": ["answer"]})
        >>> Model(answer="yes").get_json()
        {'answer': 'yes'}
    """
    key = json.dumps(schema, separators=(",", ":"), default=str)  # field order matters
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = model_from_schema(schema, DataModel)
    return model


def to_json_data_model(value: Any, schema: dict | None = None) -> JsonDataModel | None:
    """Convert a DataModel, JsonDataModel, dict or None into a JsonDataModel (or None)."""
    if value is None or isinstance(value, JsonDataModel):
        return value
    if isinstance(value, DataModel):
        return value.to_json_data_model()
    if isinstance(value, dict):
        return JsonDataModel(json=value, schema=schema)
    raise DataError(
        "Expected a DataModel, a JsonDataModel or a dict; received "
        f"{type(value).__name__}."
    )
