"""Build what a run config names: the language model, reward, metrics, optimizer, user code.

Every builder raises `ConfigError` naming the config file and the key path
(`optimizer.population_size`, `metrics[1].name`...). Names resolve through synaray's
registries (`exact_match`, `population_search`...) or, with a colon, as
`package.module:attribute` imported from the current directory (as `python -m` would).

Example:
    >>> from synaray.config.schema import ComponentConfig
    >>> build_reward(ComponentConfig(name="exact_match"), "run.yaml")
    <ExactMatch name=exact_match reduction=mean>
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from synaray.config.messages import config_error, suggest, unknown_key
from synaray.config.schema import BudgetConfig, ComponentConfig, ModelConfig
from synaray.errors import ConfigError

__all__ = [
    "build_language_model",
    "build_metric",
    "build_optimizer",
    "build_reward",
    "import_object",
    "is_synaray_path",
    "located",
]

# Constructor arguments that the config sets elsewhere, and where.
_NAME_RESERVED = {"name": "`name` names the class or function to use"}
_OPTIMIZER_RESERVED = {
    **_NAME_RESERVED,
    "seed": "set the seed with `training.seed`",
    "budget": "set limits in the `budget` section (generations, lm_calls, tokens, cost, "
              "wall_time_s, target_reward)",
}
# Base classes that need a function: accepted, but not listed as choices.
_BASES = {"reward", "batch_reward", "reward_function_wrapper", "batch_reward_function_wrapper",
          "mean_metric_wrapper"}
_MODEL_KEYS = ("language_model", "embedding_model")
_ARGUMENT = re.compile(r"argument `(\w+)`")


def located(exc: Exception, source: str, path: str) -> ConfigError:
    """Re-raise a constructor's `ConfigError` at `path.<argument>` of the config file."""
    text = str(exc)
    match = _ARGUMENT.search(text)
    where = f"{path}.{match.group(1)}" if match else path
    return ConfigError(f"{source}: {where}: {text}")


# --- user code ----------------------------------------------------------------------------
def _cwd_on_path() -> None:
    """Module paths in a config resolve from the current directory (the job's working dir
    under `ray job submit`), also when the `synaray` script's own folder is first on
    sys.path. The directory goes LAST: a `json.py` or `litellm.py` there never replaces an
    installed module."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


def import_object(spec: str, source: str, path: str) -> Any:
    """The object at `package.module:attr.attr`, or a ConfigError saying what went wrong.

    Inside `synaray.saving.safe_mode_scope(True)` (a run config read from run storage) only
    synaray's own modules are imported; any other is refused before it is imported.
    """
    from synaray.saving import ALLOW_HINT, resolve_safe_mode

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise config_error(source, path, "a 'package.module:name' string", spec)
    safe = resolve_safe_mode(None, default=False)
    refused = ConfigError(f"{source}: {path}: refusing to import {spec!r}: a stored run "
                          "config may name only synaray's own code unless trusted. "
                          f"{ALLOW_HINT}")
    if safe and not is_synaray_path(spec):
        raise refused
    _cwd_on_path()
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise config_error(source, path, "an importable module", spec,
                               note=f"(no module named {exc.name!r}; modules are imported "
                                    f"from the current directory {os.getcwd()} and the "
                                    "installed packages)") from None
        raise ConfigError(f"{source}: {path}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise ConfigError(f"{source}: {path}: importing {module_name!r} failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise ConfigError(f"{source}: {path}: {module_name!r} has no attribute {part!r} "
                              f"(from {spec!r}).{suggest(part, names)}")
        obj = getattr(obj, part)
    if safe and (inspect.ismodule(obj) or not is_synaray_path(getattr(obj, "__module__", None)
                                                            or "")):
        raise refused  # not defined by synaray (e.g. `os.system` seen through a module)
    return obj


def is_synaray_path(spec: str) -> bool:
    """Whether `module:attr` names a module of synaray itself."""
    module = spec.partition(":")[0]
    return module == "synaray" or module.startswith("synaray.")


# --- signatures -----------------------------------------------------------------------------
def _parameters(target: Any) -> tuple[list[str], bool]:
    """Keyword parameters of a class constructor or function, and whether it takes **kw."""
    func = target.__init__ if inspect.isclass(target) else target
    params = list(inspect.signature(func).parameters.values())
    if inspect.isclass(target):
        params = params[1:]  # self
    names = [p.name for p in params
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_settings(target: Any, settings: Mapping[str, Any], source: str, path: str,
                   owner: str, reserved: Mapping[str, str] | None = None) -> None:
    """Every setting is a constructor argument of `target` (not a reserved one)."""
    reserved = reserved or {}
    names, takes_kwargs = _parameters(target)
    allowed = [n for n in names if n not in reserved]
    for key in settings:
        if key in reserved:
            raise ConfigError(f"{source}: {path}.{key}: not a setting here: {reserved[key]}.")
        if key not in names and not takes_kwargs:
            raise unknown_key(source, path, key, allowed, what="setting", owner=owner)


def _with_models(settings: Mapping[str, Any], source: str, path: str) -> dict[str, Any]:
    """`language_model` / `embedding_model` given as a name or a model section become models."""
    out = dict(settings)
    for key in _MODEL_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            value = {"model": value}
        if isinstance(value, dict):
            try:
                spec = ModelConfig.model_validate(value)
            except Exception as exc:
                raise ConfigError(f"{source}: {path}.{key}: expected a model name or a model "
                                  f"section ({exc})") from None
            out[key] = (build_language_model(spec, source, f"{path}.{key}")
                        if key == "language_model" else _embedding_model(spec))
    return out


def _embedding_model(spec: ModelConfig) -> Any:
    from synaray.lm import EmbeddingModel

    return EmbeddingModel(model=spec.model, api_base=spec.api_base, cache=spec.cache,
                          api_key_env=spec.api_key_env)


def _names(registry: Iterable[str]) -> list[str]:
    return sorted(k for k in registry if k == k.lower() and k not in _BASES)


def _construct(target: Any, settings: Mapping[str, Any], source: str, path: str) -> Any:
    try:
        return target(**settings)
    except ConfigError as exc:
        raise located(exc, source, path) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {path}: {exc}") from None


# --- the language model ---------------------------------------------------------------------
def build_language_model(spec: ModelConfig, source: str, path: str = "model",
                         need_key: bool = False) -> Any:
    """A `LanguageModel` from the model section (the API key from `api_key_env`)."""
    from synaray.lm import LanguageModel

    if spec.api_key_env and need_key and os.environ.get(spec.api_key_env) is None:
        raise ConfigError(f"{source}: {path}.api_key_env: the environment variable "
                          f"{spec.api_key_env!r} is not set.")
    # The variable's name, not its value: each process that calls the model reads it.
    kwargs = {"api_base": spec.api_base, "api_key_env": spec.api_key_env,
              "temperature": spec.temperature,
              "max_tokens": spec.max_tokens, "timeout": spec.timeout, "retries": spec.retries,
              "cache": spec.cache, "max_concurrency": spec.max_concurrency,
              "structured_output": spec.structured_output, "loop_stop": spec.loop_stop}
    try:
        return LanguageModel(spec.model, **kwargs)
    except ConfigError as exc:
        if "argument `" not in str(exc):  # about the model name itself
            raise ConfigError(f"{source}: {path}.model: {exc}") from None
        raise located(exc, source, path) from None


# --- reward and metrics -----------------------------------------------------------------------
def _reward_target(name: str, source: str, path: str) -> Any:
    from synaray import rewards
    from synaray.saving import get_registered_object

    if ":" in name:
        return import_object(name, source, path)
    target = rewards.ALL_OBJECTS_DICT.get(name) or get_registered_object(name)
    if target is None:
        known = _names(rewards.ALL_OBJECTS_DICT)
        raise ConfigError(f"{source}: {path}: unknown reward {name!r}; expected one of "
                          f"{', '.join(known)}, or 'package.module:function'."
                          f"{suggest(name, known)}")
    return target


def build_reward(ref: ComponentConfig, source: str, path: str = "reward") -> Any:
    """A `Reward` from `{name, **settings}` (a registry name or `module:function`)."""
    from synaray import rewards

    target = _reward_target(ref.name, source, f"{path}.name")
    settings = _with_models(ref.settings, source, path)
    if not inspect.isclass(target):
        if not callable(target):
            raise config_error(source, f"{path}.name", "a Reward class or a function "
                               "fn(y_true, y_pred) -> float", ref.name)
        return _construct(rewards.RewardFunctionWrapper, {"fn": target, **settings}, source,
                          path)
    check_settings(target, settings, source, path, f"reward {ref.name!r}", _NAME_RESERVED)
    reward = _construct(target, settings, source, path)
    if not isinstance(reward, rewards.Reward):
        raise config_error(source, f"{path}.name", "a Reward", ref.name)
    return reward


def build_metric(ref: ComponentConfig, source: str, path: str) -> Any:
    """A `Metric` from `{name, **settings}`: a metric name, a reward name, or module:attr."""
    from synaray import metrics, rewards

    name = ref.name
    if ":" in name:
        target = import_object(name, source, f"{path}.name")
    else:
        target = metrics.ALL_OBJECTS_DICT.get(name)
        if target is None and name in rewards.ALL_OBJECTS_DICT:
            return metrics.get(build_reward(ref, source, path))
        if target is None:
            known = _names(metrics.ALL_OBJECTS_DICT)
            raise ConfigError(f"{source}: {path}.name: unknown metric {name!r}; expected one "
                              f"of {', '.join(known)}, a reward name, or "
                              f"'package.module:Class'.{suggest(name, known)}")
    settings = _with_models(ref.settings, source, path)
    if inspect.isclass(target):
        check_settings(target, settings, source, path, f"metric {name!r}", _NAME_RESERVED)
        target = _construct(target, settings, source, path)
    try:
        return metrics.get(target)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {path}.name: {exc}") from None


# --- optimizer --------------------------------------------------------------------------------
def optimizer_class(ref: ComponentConfig, source: str, path: str = "optimizer") -> type:
    from synaray import optimizers

    if ":" in ref.name:
        target = import_object(ref.name, source, f"{path}.name")
    else:
        target = optimizers.ALL_OBJECTS.get(ref.name)
        if target is None:
            known = _names(optimizers.ALL_OBJECTS)
            raise ConfigError(f"{source}: {path}.name: unknown optimizer {ref.name!r}; "
                              f"expected one of {', '.join(known)}, or "
                              f"'package.module:Class'.{suggest(ref.name, known)}")
    if not (inspect.isclass(target) and issubclass(target, optimizers.Optimizer)):
        raise config_error(source, f"{path}.name", "an Optimizer class", ref.name)
    return target


def build_optimizer(ref: ComponentConfig, source: str, seed: int, budget: BudgetConfig,
                    language_model: Any = None, path: str = "optimizer") -> Any:
    """The optimizer, its settings checked against its constructor's signature.

    `language_model` (the run's model) is given to optimizers that take one and name none.
    """
    from synaray.optimizers import Budget

    cls = optimizer_class(ref, source, path)
    check_settings(cls, ref.settings, source, path, f"optimizer {ref.name!r}",
                   _OPTIMIZER_RESERVED)
    settings = _with_models(ref.settings, source, path)
    names, _ = _parameters(cls)
    if "language_model" in names and "language_model" not in settings \
            and language_model is not None:
        settings["language_model"] = language_model
    try:
        settings["budget"] = Budget(**budget.to_budget_kwargs())
    except ValueError as exc:
        raise ConfigError(f"{source}: budget: {exc}") from None
    if "seed" in names:
        settings["seed"] = seed
    return _construct(cls, settings, source, path)
