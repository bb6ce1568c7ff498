"""`Generator`: one structured LM call whose instructions and examples are trainable."""

from __future__ import annotations

import copy
from typing import Any

from synaray.data.data_model import DataModel, JsonDataModel, data_model_from_schema
from synaray.data.schema_utils import dereference_schema
from synaray.errors import ConfigError
from synaray.modules.module import Module, merge_inputs
from synaray.modules.prompts import build_messages
from synaray.saving import class_path, deserialize_object, import_data_model, serialize_object
from synaray.utils.tracing import record_module

__all__ = ["Generator"]


def _check_example(example: Any, n: int, module: str) -> dict:
    if (not isinstance(example, dict) or not isinstance(example.get("inputs"), dict)
            or not isinstance(example.get("outputs"), dict)):
        raise ConfigError(
            f"Generator {module!r}: example {n} must be a dict with `inputs` and `outputs` "
            f"dicts; received {example!r:.120}."
        )
    return {"inputs": example["inputs"], "outputs": example["outputs"]}


class Generator(Module):
    """Ask a language model for structured output that fits `data_model` (or `schema`).

    Its trainable state is `instructions` (text) and `examples` (few-shot input/output pairs);
    optimizers search over both.

    Args:
        data_model: the DataModel class of the output.
        schema: alternatively, the JSON schema of the output.
        language_model: a `synaray.LanguageModel`.
        instructions: the task instructions; None uses a short default.
        examples: few-shot examples, a list of `{"inputs": {...}, "outputs": {...}}` dicts
            or of `(inputs, outputs)` pairs of data models.
        use_inputs_schema: also describe the input fields in the prompt.
        return_inputs: return the inputs merged with the outputs.
        name, description, trainable: see `Module`.

    Example:
        >>> import synaray
        >>> class Answer(synaray.DataModel):
        ...     answer: str
        >>> lm = synaray.LanguageModel(model="openai/my-model")
        >>> gen = synaray.Generator(data_model=Answer, language_model=lm,
        ...                         instructions="Answer briefly.")
        >>> gen.get_state()
        {'instructions': 'Answer briefly.', 'examples': []}
    """

    def __init__(self, data_model: type[DataModel] | None = None, schema: dict | None = None,
                 language_model: Any = None, instructions: str | None = None,
                 examples: list | None = None, use_inputs_schema: bool = False,
                 return_inputs: bool = False, name: str | None = None,
                 description: str | None = None, trainable: bool = True) -> None:
        super().__init__(name=name, description=description, trainable=trainable)
        if data_model is None and schema is None:
            raise ConfigError("Generator needs `data_model` (a DataModel class) or `schema`.")
        if language_model is None:
            raise ConfigError("Generator needs `language_model` (a synaray.LanguageModel).")
        self.schema = schema if schema is not None else data_model.get_schema()
        self.data_model = data_model or data_model_from_schema(self.schema)
        self.language_model = language_model
        self.use_inputs_schema = use_inputs_schema
        self.return_inputs = return_inputs
        self.input_schema: dict | None = None
        self.instructions = instructions
        self.examples: list[dict] = []
        self.set_examples(examples or [])

    def set_examples(self, examples: list) -> None:
        normalised = []
        for n, example in enumerate(examples):
            if isinstance(example, (tuple, list)) and len(example) == 2:
                x, y = example
                example = {"inputs": merge_inputs(x).get_json(),
                           "outputs": merge_inputs(y).get_json()}
            normalised.append(_check_example(example, n, self.name))
        self.examples = normalised

    def compute_output_schema(self, input_schema: dict) -> tuple[dict, type | None]:
        if self.return_inputs:
            out = dereference_schema(self.schema)
            merged = {"type": "object",
                      "properties": {**input_schema.get("properties", {}),
                                     **out.get("properties", {})},
                      "required": input_schema.get("required", []) + out.get("required", [])}
            return merged, None
        return self.schema, self.data_model

    def build_messages(self, inputs: JsonDataModel) -> list[dict]:
        return build_messages(inputs.get_json(), self.schema, self.instructions, self.examples,
                              self.input_schema if self.use_inputs_schema else None)

    async def call(self, inputs: JsonDataModel | None, training: bool = False) -> Any:
        if inputs is None:
            record_module(self.name, None, None)
            return None
        result = await self.language_model(self.build_messages(inputs), schema=self.schema,
                                           data_model=self.data_model)
        if not result.ok:
            record_module(self.name, inputs.get_json(), None)
            return None
        output = JsonDataModel(json=result.json, schema=self.schema)
        record_module(self.name, inputs.get_json(), result.json)
        if self.return_inputs:
            return merge_inputs([inputs, output])
        return output

    # --- trainable state -------------------------------------------------------------
    def get_state(self) -> dict:
        return {"instructions": self.instructions, "examples": copy.deepcopy(self.examples)}

    def set_state(self, state: dict) -> None:
        unknown = set(state) - {"instructions", "examples"}
        if unknown:
            raise ConfigError(f"Generator {self.name!r}: unknown state keys {sorted(unknown)}; "
                              "expected `instructions` and `examples`.")
        if "instructions" in state:
            self.instructions = state["instructions"]
        if "examples" in state:
            self.set_examples(copy.deepcopy(state["examples"]))

    # --- config ----------------------------------------------------------------------
    def get_config(self) -> dict:
        return {**super().get_config(), "schema": self.schema,
                "data_model": class_path(self.data_model),
                "language_model": serialize_object(self.language_model),
                "use_inputs_schema": self.use_inputs_schema,
                "return_inputs": self.return_inputs}

    @classmethod
    def from_config(cls, config: dict) -> Generator:
        config = dict(config)
        schema = config.pop("schema")
        data_model = import_data_model(config.pop("data_model", None), schema)
        config["language_model"] = deserialize_object(config["language_model"])
        return cls(data_model=data_model, schema=schema, **config)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} name={self.name} "
                f"output={self.schema.get('title', 'DataModel')} examples={len(self.examples)}>")
