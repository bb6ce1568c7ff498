"""Serialization of synaray objects to JSON configs, and the registry of custom objects.

Every public component (modules, models, rewards, metrics, optimizers, callbacks) has
`get_config()` (JSON of its constructor arguments) and `from_config(config)`. Nested objects
serialize as `{"module", "class_name", "config", "registered_name"}`. User classes and
functions are registered under `"package>Name"` so a saved program reloads with them.

Example:
    >>> @register_synaray_serializable(package="my_project")
    ... def my_reward(y_true, y_pred):
    ...     return 1.0
    >>> serialize_object(my_reward)["registered_name"]
    'my_project>my_reward'
    >>> deserialize_object(serialize_object(my_reward)) is my_reward
    True
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from synaray.errors import ConfigError

__all__ = [
    "class_path",
    "deserialize_object",
    "get_registered_name",
    "get_registered_object",
    "import_data_model",
    "register_synaray_serializable",
    "serialize_object",
]

_REGISTRY: dict[str, Any] = {}
_NAMES: dict[int, str] = {}


def register_synaray_serializable(package: str = "custom", name: str | None = None) -> Callable:
    """Decorator that registers a class or function under `package>name` for loading."""

    def decorator(obj: Any) -> Any:
        key = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ConfigError(
                f"Cannot register {obj.__name__}: a registered class needs a `get_config` method."
            )
        _REGISTRY[key] = obj
        _NAMES[id(obj)] = key
        return obj

    return decorator


def get_registered_name(obj: Any) -> str | None:
    return _NAMES.get(id(obj))


def get_registered_object(name: str) -> Any:
    return _REGISTRY.get(name)


def serialize_object(obj: Any) -> Any:
    """A JSON-compatible description of `obj` from which `deserialize_object` rebuilds it."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_object(o) for o in obj]
    if isinstance(obj, dict):
        return {k: serialize_object(v) for k, v in obj.items()}
    registered = get_registered_name(obj)
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        if obj.__name__ == "<lambda>":
            raise ConfigError(
                "Cannot serialize a lambda; define a named function and register it with "
                "@synaray.saving.register_synaray_serializable()."
            )
        return {"module": obj.__module__, "class_name": "function", "config": obj.__name__,
                "registered_name": registered}
    if hasattr(obj, "get_config"):
        return {"module": type(obj).__module__, "class_name": type(obj).__name__,
                "config": obj.get_config(),
                "registered_name": get_registered_name(type(obj))}
    raise ConfigError(f"Cannot serialize an object of type {type(obj).__name__}: it has no "
                      "`get_config` method.")


def _locate(module: str, name: str) -> Any:
    if not module:
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def deserialize_object(config: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Rebuild what `serialize_object` described (plain values pass through)."""
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        if isinstance(config, list):
            return [deserialize_object(c, custom_objects) for c in config]
        return config
    custom_objects = custom_objects or {}
    class_name, inner = config["class_name"], config["config"]
    name = inner if class_name == "function" else class_name
    registered = config.get("registered_name")
    obj = (custom_objects.get(name) or (registered and custom_objects.get(registered))
           or (registered and _REGISTRY.get(registered))
           or _locate(config.get("module", ""), name))
    if obj is None:
        raise ConfigError(
            f"Cannot find {registered or name!r} (module {config.get('module')!r}) while "
            "loading. Register it with @synaray.saving.register_synaray_serializable() or pass "
            "it in `custom_objects`."
        )
    if class_name == "function":
        return obj
    if hasattr(obj, "from_config"):
        return obj.from_config(inner)
    return obj(**inner)


def class_path(cls: type | None) -> str | None:
    """`module:QualName` of an importable class (None for local or missing classes)."""
    if cls is None or "<locals>" in cls.__qualname__:
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def import_data_model(path: str | None, schema: dict) -> type | None:
    """The DataModel class at `module:QualName` if it still has `schema`, else None."""
    if not path:
        return None
    module, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    get_schema = getattr(obj, "get_schema", None)
    if isinstance(obj, type) and get_schema is not None and get_schema() == schema:
        return obj
    return None
