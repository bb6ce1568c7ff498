"""The program a run config names, compiled with its reward, metrics and optimizer.

- `task: NAME`: one `Generator` from the task's input to its output model, with the
  task's instructions (as `scripts/main_job.py` builds it);
- `program.builder: "module:function"`: called (awaited if async) with the keyword
  arguments it declares among `language_model`, `input_model`, `output_model`, `config`,
  plus `program.args`;
- `program.path`: a saved program (`Program.save`, a run's `best_program.json`), local or
  a URI;
- `data.inputs` and `data.outputs` (no builder or path): one `Generator` or
  `ChainOfThought` (`program.kind`) built from them (`synaray.config.data_program`); the
  reward defaults to exact match on the output fields, the metric to accuracy.

Example:
    >>> import asyncio
    >>> from synaray.config import parse_run_config
    >>> config = parse_run_config({"task": "sports_understanding", "model": "local/smollm2",
    ...                            "optimizer": "random_few_shot"}, "demo")
    >>> program = asyncio.run(build_program(config))
    >>> program.name, program.reward.name, [m.name for m in program.metrics]
    ('sports_understanding', 'exact_match', ['accuracy'])
"""

from __future__ import annotations

import inspect
from typing import Any

from synaray.config.checks import import_data_model
from synaray.config.components import (
    build_language_model,
    build_metric,
    build_optimizer,
    build_reward,
    import_object,
)
from synaray.config.schema import ComponentConfig, RunConfig
from synaray.errors import ConfigError

__all__ = ["build_program", "payload_uses_local_model", "uses_local_model"]


async def _task_program(config: RunConfig, lm: Any) -> Any:
    import synaray
    from synaray.datasets import get_task

    task = get_task(config.task.name)
    inputs = synaray.Input(data_model=task.input_data_model)
    outputs = await synaray.Generator(data_model=task.output_data_model, language_model=lm,
                                      instructions=task.instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name=task.name,
                           description=task.instructions)


async def _built_program(config: RunConfig, lm: Any) -> Any:
    source, spec = config.source, config.program
    builder = import_object(spec.builder, source, "program.builder")
    offered = {"language_model": lm, "config": config}
    if config.data is not None and config.data.described():
        from synaray.config.data_program import data_models, with_resolved_labels

        offered["input_model"], offered["output_model"] = data_models(
            with_resolved_labels(config).data)
    elif config.data is not None:
        offered["input_model"] = import_data_model(config.data.input_model, source,
                                                   "data.input_model")
        offered["output_model"] = import_data_model(config.data.output_model, source,
                                                    "data.output_model")
    params = inspect.signature(builder).parameters
    kwargs = {k: v for k, v in offered.items() if k in params}
    try:
        program = builder(**kwargs, **spec.args)
        if inspect.isawaitable(program):
            program = await program
    except TypeError as exc:
        raise ConfigError(f"{source}: program.builder: calling {spec.builder} failed: {exc} "
                          f"(it was given {sorted([*kwargs, *spec.args])}).") from exc
    return program


def _loaded_program(config: RunConfig) -> Any:
    from synaray.program_payload import read_program_file

    # in safe mode unless the run trusts its code (`synaray fit --trust-code`)
    return read_program_file(config.program.path).program


def _default_metrics(reward_name: str, **settings: Any) -> list[ComponentConfig]:
    name = "accuracy" if reward_name == "exact_match" else "f1_score"
    return [ComponentConfig(name=name, **settings)]


def _reward_and_metrics(config: RunConfig) -> tuple[ComponentConfig, list[ComponentConfig]]:
    """The config's reward and metrics, or the defaults of a task or a described program."""
    reward_ref, metric_refs = config.reward, list(config.metrics)
    if config.task is not None:
        from synaray.datasets import get_task

        reward_ref = reward_ref or ComponentConfig(name=get_task(config.task.name).reward)
        return reward_ref, metric_refs or _default_metrics(reward_ref.name)
    if reward_ref is None and config.data is not None and config.data.described():
        from synaray.config.data_program import default_reward_settings

        reward_ref = ComponentConfig(**default_reward_settings(config.data))
        fields = {"in_mask": list(config.data.outputs)}
        return reward_ref, metric_refs or _default_metrics(reward_ref.name, **fields)
    return reward_ref, metric_refs


async def build_program(config: RunConfig, lm: Any = None) -> Any:
    """The compiled program of `config` (reward, metrics and optimizer from the config).

    Args:
        config: the run config.
        lm: the language model to use (default: built from the `model` section).
    """
    from synaray.programs import Program

    source = config.source
    if lm is None and config.model is not None:
        lm = build_language_model(config.model, source, need_key=True)
    if config.task is not None:
        program = await _task_program(config, lm)
    elif config.program is None or config.program.from_data():
        from synaray.config.data_program import build_data_program

        program = await build_data_program(config, lm)
    elif config.program.builder is not None:
        program = await _built_program(config, lm)
    else:
        program = _loaded_program(config)
    if not isinstance(program, Program):
        raise ConfigError(f"{source}: program: expected the builder to return a "
                          f"synaray.Program; received {type(program).__name__}.")
    reward_ref, metric_refs = _reward_and_metrics(config)
    program.compile(
        reward=build_reward(reward_ref, source),
        metrics=[build_metric(m, source, f"metrics[{n}]") for n, m in enumerate(metric_refs)],
        optimizer=build_optimizer(config.optimizer, source, config.training.seed,
                                  config.budget, lm))
    return program


def uses_local_model(program: Any) -> bool:
    """Whether any model of the program or its optimizer is a bundled `local/...` model."""
    return payload_uses_local_model(program.to_payload())


def payload_uses_local_model(payload: Any) -> bool:
    """Whether a saved program (JSON) names a bundled `local/...` model anywhere."""
    found = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            model = value.get("model")
            if isinstance(model, str) and model.startswith("local/"):
                found.append(model)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(payload)
    return bool(found)
