"""`Program`: a graph of modules from inputs to outputs, built functionally."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from synaray.data.data_model import JsonDataModel, to_json_data_model
from synaray.errors import ConfigError, DataError
from synaray.modules.module import Module, merge_inputs
from synaray.modules.symbolic import Input, SymbolicDataModel
from synaray.programs.graph import Node, assign_names, collect_nodes
from synaray.programs.serialization import ProgramSerializationMixin
from synaray.programs.training import ProgramTrainingMixin
from synaray.saving import deserialize_object, import_data_model
from synaray.utils.progress import Progress
from synaray.utils.tracing import trace_scope

__all__ = ["Program"]


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Program(ProgramTrainingMixin, ProgramSerializationMixin, Module):
    """A program: modules wired from `inputs` to `outputs`, itself usable as a module.

    Build it functionally, as in Synalinks:

    Example:
        >>> import asyncio, synaray
        >>> class Query(synaray.DataModel):
        ...     query: str
        >>> class Answer(synaray.DataModel):
        ...     answer: str
        >>> async def build():
        ...     inputs = synaray.Input(data_model=Query)
        ...     outputs = await synaray.Generator(
        ...         data_model=Answer,
        ...         language_model=synaray.LanguageModel("openai/m"))(inputs)
        ...     return synaray.Program(inputs=inputs, outputs=outputs, name="qa")
        >>> program = asyncio.run(build())
        >>> [m.name for m in program.modules], list(program.get_state())
        (['generator'], ['generator'])

    Args:
        inputs: an `Input(...)` placeholder or a list of them.
        outputs: the symbolic output of a module call, or a list of them.
        name: the program's name.
        description: what it does.
    """

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None,
                 description: str | None = None, trainable: bool = True) -> None:
        super().__init__(name=name, description=description, trainable=trainable)
        if inputs is None or outputs is None:
            raise ConfigError("Program needs `inputs` (from synaray.Input) and `outputs` (from "
                              "calling modules on them).")
        self._multi_input = isinstance(inputs, (list, tuple))
        self._multi_output = isinstance(outputs, (list, tuple))
        self._inputs: list[SymbolicDataModel] = _as_list(inputs)
        self._outputs: list[SymbolicDataModel] = _as_list(outputs)
        for sym in self._inputs:
            if not isinstance(sym, SymbolicDataModel) or sym.producer is not None:
                raise ConfigError("Program `inputs` must be synaray.Input(...) placeholders.")
        self._nodes: list[Node] = collect_nodes(self._inputs, self._outputs)
        assign_names(self.modules)
        self._init_training()

    # --- structure ---------------------------------------------------------------------
    @property
    def modules(self) -> list[Module]:
        """Each module once, in graph order."""
        seen: dict[int, Module] = {}
        for node in self._nodes:
            seen.setdefault(id(node.module), node.module)
        return list(seen.values())

    @property
    def trainable_modules(self) -> list[Module]:
        return [m for m in self.modules if m.trainable and m.get_state() is not None]

    def get_module(self, name: str) -> Module:
        for module in self.modules:
            if module.name == name:
                return module
        raise ConfigError(f"No module named {name!r}; modules: {[m.name for m in self.modules]}.")

    @property
    def input_schemas(self) -> list[dict]:
        return [s.get_schema() for s in self._inputs]

    @property
    def output_schemas(self) -> list[dict]:
        return [s.get_schema() for s in self._outputs]

    def compute_output_schema(self, input_schema: dict) -> tuple[dict, type | None]:
        out = self._outputs[0]
        return out.get_schema(), out.data_model

    # --- trainable state ---------------------------------------------------------------
    def get_state(self) -> dict:
        """The trainable state: `{module_name: module_state}` (JSON); what optimizers search."""
        return {m.name: m.get_state() for m in self.trainable_modules}

    def set_state(self, state: dict) -> None:
        names = {m.name: m for m in self.trainable_modules}
        unknown = set(state) - set(names)
        if unknown:
            raise ConfigError(f"Program {self.name!r}: state for unknown modules "
                              f"{sorted(unknown)}; trainable modules are {sorted(names)}.")
        for name, module_state in state.items():
            names[name].set_state(module_state)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Program:
        """The program `get_config` described (a `Program`, whatever subclass saved it)."""
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

    # --- running -----------------------------------------------------------------------
    def _bind_inputs(self, inputs: Any) -> dict[int, JsonDataModel | None]:
        values = _as_list(inputs) if self._multi_input else [inputs]
        if len(values) != len(self._inputs):
            raise DataError(f"Program {self.name!r} takes {len(self._inputs)} inputs; received "
                            f"{len(values)}.")
        bound = {}
        for sym, value in zip(self._inputs, values, strict=True):
            bound[id(sym)] = to_json_data_model(value, schema=sym.get_schema())
        return bound

    async def __call__(self, inputs: Any, training: bool = False) -> Any:
        if isinstance(inputs, SymbolicDataModel) or (
                isinstance(inputs, (list, tuple)) and inputs
                and isinstance(inputs[0], SymbolicDataModel)):
            return self._symbolic_call(inputs)
        return await self.call(inputs, training=training)

    async def call(self, inputs: Any, training: bool = False) -> Any:
        """Run the program on one input (a DataModel, JsonDataModel, dict, or a list of them).

        Returns the output JsonDataModel, or None when a step failed (the error is in the
        current trace, see `synaray.utils.tracing`).
        """
        values = self._bind_inputs(inputs)
        for node in self._nodes:
            parents = [values[id(p)] for p in node.parents]
            arg = parents[0] if len(parents) == 1 else merge_inputs(parents)
            values[id(node.output)] = await node.module.call(arg, training=training)
        outputs = [values[id(o)] for o in self._outputs]
        return outputs if self._multi_output else outputs[0]

    async def predict(self, x: Sequence[Any], batch_size: int = 32, verbose: bool = True,
                      progress: Progress | None = None) -> np.ndarray:
        """Run the program on every input, at most `batch_size` at a time, in input order.

        Returns a numpy object array of outputs (None where a sample failed).
        """
        if batch_size < 1:
            raise ConfigError(f"Invalid value for argument `batch_size`. Received: {batch_size}. "
                              "Expected an integer >= 1.")
        xs = list(x)
        out = np.empty(len(xs), dtype=object)
        semaphore = asyncio.Semaphore(batch_size)
        bar = progress or Progress(len(xs), desc=f"predict {self.name}", verbose=verbose)

        async def one(i: int) -> None:
            async with semaphore:
                with trace_scope() as trace:
                    out[i] = await self.call(xs[i])
                bar.update(1, lm_calls=trace.lm_calls, failures=trace.failures)

        await asyncio.gather(*(one(i) for i in range(len(xs))))
        if progress is None:
            bar.close()
        return out

    # --- display -------------------------------------------------------------------------
    def summary(self, print_fn: Any = print) -> str:
        """A table of the modules: name, type, output, trainable state size."""
        rows = [("module", "type", "output", "state")]
        for module in self.modules:
            state = module.get_state() if module.trainable else None
            size = ("-" if state is None else
                    f"{len(state.get('examples', []))} examples, "
                    f"{'instructions' if state.get('instructions') else 'default instructions'}")
            schema = getattr(module, "schema", None) or {}
            rows.append((module.name, type(module).__name__, schema.get("title", "-"), size))
        widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
        lines = [f"Program: {self.name}" + (f" — {self.description}" if self.description else "")]
        for n, row in enumerate(rows):
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def __repr__(self) -> str:
        return f"<Program name={self.name} modules={len(self.modules)}>"
