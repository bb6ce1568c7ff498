"""Reading a run config file (YAML, TOML or JSON), applying overrides, validating it.

Overrides are dotted keys (`optimizer.population_size`) set before validation, so an
override is checked like the file. A string where a mapping is needed is a shorthand that
the override expands: with `optimizer: population_search` in the file,
`optimizer.population_size=3` gives `{name: population_search, population_size: 3}`.

Example:
    >>> config = parse_run_config({"task": "sports_understanding", "model": "local/smollm2",
    ...                            "optimizer": "random_few_shot"}, "demo",
    ...                           overrides={"training.batch_size": 8})
    >>> config.training.batch_size, config.source
    (8, 'demo')
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from synaray.config.messages import validation_error
from synaray.config.schema import RunConfig
from synaray.errors import ConfigError

__all__ = ["apply_overrides", "load_run_config", "parse_override", "parse_run_config",
           "read_config_file"]

_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}
# Where a string shorthand expands to a mapping, the key it becomes.
_SHORTHAND_KEY = {"model": "model"}


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}.") from None


def _parse(text: str, kind: str, source: str) -> Any:
    if kind == "yaml":
        return _parse_yaml(text, source)
    if kind == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg}.") from None


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a `.yaml`/`.yml`, `.toml` or `.json` file.

    Raises:
        ConfigError: a missing file, an unknown suffix, a syntax error (with its line), or a
            file whose top level is not a mapping.
    """
    source = os.fspath(path)
    kind = _FORMATS.get(Path(source).suffix.lower())
    if kind is None:
        raise ConfigError(f"{source}: expected a run config ending in "
                          f"{', '.join(_FORMATS)}; received a {Path(source).suffix or 'file'} "
                          "without one of those suffixes.")
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found (current directory: "
                          f"{os.getcwd()}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the config file: {exc}.") from None
    data = _parse(text, kind, source)
    if data is None:
        raise ConfigError(f"{source}: the config file is empty; expected a mapping of "
                          "settings (task or program, optimizer, ...).")
    if not isinstance(data, dict):
        kind_name = {list: "list", str: "string"}.get(type(data), type(data).__name__)
        raise ConfigError(f"{source}: expected a mapping of settings at the top level "
                          f"(key: value); received a {kind_name}.")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value` from the command line; the value is read as YAML (`3` is a number,
    `true` a boolean, `[a, b]` a list, `null` None; anything else stays a string)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"Invalid override {text!r}: expected KEY=VALUE, such as "
                          "optimizer.population_size=4.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any] | None,
                    source: str = "<config>") -> dict[str, Any]:
    """A copy of `data` with each dotted key of `overrides` set (mappings created as needed)."""
    out = copy.deepcopy(dict(data))
    for key, value in (overrides or {}).items():
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"{source}: override {key!r}: expected a dotted key such as "
                              "training.batch_size.")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, str):
                child = node[part] = {_SHORTHAND_KEY.get(part if depth == 0 else "", "name"):
                                      child}
            elif not isinstance(child, dict):
                where = ".".join(parts[:depth + 1])
                raise ConfigError(f"{source}: override {key!r}: {where} holds a "
                                  f"{type(child).__name__}, not a mapping of settings.")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def parse_run_config(data: Mapping[str, Any], source: str,
                     overrides: Mapping[str, Any] | None = None, *, check: bool = True,
                     check_files: bool = True) -> RunConfig:
    """Validate a config mapping (overrides applied first) into a `RunConfig`.

    Args:
        data: the mapping read from a file (or a saved run_config.json).
        source: what to name in error messages (the file).
        overrides: dotted keys -> values.
        check: also run `synaray.config.checks` (names, settings, imports, files).
        check_files: with `check`, also require local data and program files to exist.

    Raises:
        ConfigError: naming the source, the key path, what was expected and received.
    """
    merged = apply_overrides(data, overrides, source)
    try:
        config = RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise validation_error(exc, source, RunConfig, (overrides or {}).keys()) from None
    config._source = source
    if check:
        from synaray.config.checks import check_run_config

        check_run_config(config, source, check_files=check_files)
    return config


def load_run_config(path: str | os.PathLike,
                    overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Read, override and validate a run config file (YAML, TOML or JSON).

    Args:
        path: the config file.
        overrides: dotted keys -> values, applied before validation
            (`{"optimizer.population_size": 3, "engine.type": "ray"}`).

    Returns:
        The `RunConfig`; `config.source` is `path`.

    Raises:
        ConfigError: its message names the file, the dotted key, the expected type or
            values and what was received; an unknown key lists the allowed keys.

    Example:
        >>> config = load_run_config("examples/sports_population_search.yaml",  # doctest: +SKIP
        ...                          overrides={"task.n_train": 10})
        >>> config.task.n_train  # doctest: +SKIP
        10
    """
    source = os.fspath(path)
    return parse_run_config(read_config_file(source), source, overrides)
