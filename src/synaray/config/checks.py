"""Checks of a validated run config that need imports or the filesystem.

Run by `load_run_config` after the pydantic models accepted the shapes: the task name, the
`module:function` and `module:Class` paths, the data files and their format, the saved
program file, and every reward, metric and optimizer (built once, so that a bad name or
setting fails here, naming its key, and not minutes into a run). Remote URIs (`s3://...`)
are not opened here.

Example:
    >>> data_format("train.parquet", None)
    'parquet'
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from synaray.config.components import (
    build_language_model,
    build_metric,
    build_optimizer,
    build_reward,
    import_object,
    is_synaray_path,
)
from synaray.config.data_files import data_format
from synaray.config.data_program import template_columns
from synaray.config.messages import config_error, suggest
from synaray.config.schema import RunConfig
from synaray.errors import ConfigError

__all__ = ["check_run_config", "check_stored_run_config", "code_references", "data_format",
           "import_data_model"]

def import_data_model(spec: str, source: str, path: str) -> type:
    """The DataModel class at `module:Class`."""
    from synaray.data import DataModel

    obj = import_object(spec, source, path)
    if not (inspect.isclass(obj) and issubclass(obj, DataModel)):
        raise config_error(source, path, "a synaray.DataModel subclass", spec)
    return obj


def _local_file(uri: str, source: str, path: str) -> None:
    if "://" in uri:
        return
    if not Path(uri).exists():
        where = "" if os.path.isabs(uri) else f" (relative to the current directory " \
                                               f"{os.getcwd()})"
        raise ConfigError(f"{source}: {path}: file not found: {uri}{where}.")


def _check_task(config: RunConfig, source: str) -> None:
    from synaray.datasets import TASKS

    if config.task is None:
        return
    if config.task.name not in TASKS:
        raise ConfigError(f"{source}: task.name: unknown task {config.task.name!r}; expected "
                          f"one of {', '.join(sorted(TASKS))}.{suggest(config.task.name, TASKS)}")
    if config.model is None:
        raise ConfigError(f"{source}: model: missing required key: a built-in task builds a "
                          "Generator that needs a language model (e.g. "
                          "model: local/smollm2-135m).")


def _check_program(config: RunConfig, source: str, check_files: bool) -> None:
    program = config.program
    if program is None:
        return
    if program.builder is not None:
        builder = import_object(program.builder, source, "program.builder")
        if not callable(builder):
            raise config_error(source, "program.builder", "a function that builds a Program",
                               program.builder)
    elif program.path is not None and check_files:
        _local_file(program.path, source, "program.path")


def _check_data(config: RunConfig, source: str, check_files: bool) -> None:
    data = config.data
    if data is None:
        return
    if data.described():
        _check_described(config, source)
    else:
        import_data_model(data.input_model, source, "data.input_model")
        import_data_model(data.output_model, source, "data.output_model")
    for split in ("train", "validation", "test"):
        uri = getattr(data, split)
        if uri is None:
            continue
        data_format(uri, data.format, source)
        if check_files:
            _local_file(uri, source, f"data.{split}")


def _check_described(config: RunConfig, source: str) -> None:
    """Templates name plain columns; a program built from the data needs a model."""
    for name, spec in config.data.inputs.items():
        if spec.template is not None:
            try:
                template_columns(spec.template, f"data.inputs.{name}")
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
    if config.model is None and (config.program is None or config.program.from_data()):
        raise ConfigError(f"{source}: model: missing required key: a program built from "
                          "data.inputs/data.outputs needs a language model (e.g. "
                          "model: local/smollm2-135m).")


def check_run_config(config: RunConfig, source: str, check_files: bool = True) -> None:
    """Raise `ConfigError` (file, key path, expectation) for the first problem found.

    `check_files=False` skips the existence of local files (a resumed run reads its
    training data from run storage).
    """
    _check_task(config, source)
    _check_program(config, source, check_files)
    _check_data(config, source, check_files)
    lm = build_language_model(config.model, source) if config.model is not None else None
    if config.reward is not None:
        build_reward(config.reward, source)
    for n, metric in enumerate(config.metrics):
        build_metric(metric, source, f"metrics[{n}]")
    build_optimizer(config.optimizer, source, config.training.seed, config.budget, lm)


def code_references(config: RunConfig) -> dict[str, str]:
    """{key path: 'module:name'} of every name in `config` that points at code outside
    synaray (a builder, data classes, a reward, metric or optimizer given as a path).

    Example:
        >>> from synaray.config.schema import RunConfig
        >>> code_references(RunConfig(task="sports_understanding", model="local/smollm2",
        ...                           optimizer="random_few_shot", reward="my.rewards:score"))
        {'reward.name': 'my.rewards:score'}
    """
    refs: dict[str, str | None] = {}
    if config.program is not None:
        refs["program.builder"] = config.program.builder
    if config.data is not None:
        refs["data.input_model"] = config.data.input_model
        refs["data.output_model"] = config.data.output_model
    if config.reward is not None:
        refs["reward.name"] = config.reward.name
    for n, metric in enumerate(config.metrics):
        refs[f"metrics[{n}].name"] = metric.name
    refs["optimizer.name"] = config.optimizer.name
    return {key: spec for key, spec in refs.items()
            if spec and ":" in spec and not is_synaray_path(spec)}


def _named(spec: str | None) -> str:
    return repr(spec) if spec else "no code outside synaray"


def check_stored_run_config(config: RunConfig, source: str, trust_code: bool = False,
                            given: RunConfig | None = None) -> bool:
    """Whether a run config read from run storage may run the code it names (`synaray
    resume`): with `trust_code`, when it names none outside synaray, or when it names the
    same code and the same program section (builder args, program file) as `given` (the
    config the user started the run with); else ConfigError naming the key, the code and
    the file, before anything is imported.

    Returns:
        True when the stored config is trusted (its code may be imported).
    """
    refs = code_references(config)
    if trust_code:
        return True
    if given is not None:
        theirs = code_references(given)
        for key in sorted(set(refs) | set(theirs)):
            if refs.get(key) != theirs.get(key):
                raise ConfigError(
                    f"{source}: {key}: the stored run config names {_named(refs.get(key))} "
                    f"but {given.source} names {_named(theirs.get(key))}; resume with the "
                    "config the run was started with, or with --trust-code if you trust the "
                    "stored one.")
        ours, their_program = (c.program.model_dump() if c.program else None
                               for c in (config, given))
        if ours != their_program:  # a builder's args or a program file chosen by the writer
            raise ConfigError(
                f"{source}: program: the stored run config's program section ({ours}) is not "
                f"the one in {given.source} ({their_program}); resume with the config the run "
                "was started with, or with --trust-code if you trust the stored one.")
        return True
    if refs:
        named = ", ".join(f"{key}: {spec!r}" for key, spec in refs.items())
        raise ConfigError(
            f"{source}: refusing to import code outside synaray ({named}): a run config read "
            "from run storage may name only synaray's own code unless you trust it. Pass "
            "--trust-code (`synaray resume RUN --storage ... --trust-code`), or --config "
            "with the config file you started the run with.")
    return False
