"""Serialization of synaray objects to JSON configs, and the registry of custom objects.

Every public component (modules, models, rewards, metrics, optimizers, callbacks) has
`get_config()` (JSON of its constructor arguments) and `from_config(config)`. Nested objects
serialize as `{"module", "class_name", "config", "registered_name"}`. User classes and
functions are registered under `"package>Name"` so a saved program reloads with them.

Safe mode (as Keras 3's `safe_mode`): whatever reads a file (`Program.load`, `synaray
evaluate --program`, a run config's `program.path`, a stored run config at `synaray
resume`) resolves only synaray's own classes and functions, objects registered with
`register_synaray_serializable` and `custom_objects`. Any other module named by the file is
refused before it is imported. Opt out per load (`Program.load(path, safe_mode=False)`, the
`--trust-code` flag), for a block (`with safe_mode_scope(False): ...`) or for the process
(`enable_unsafe_deserialization()`).

Example:
    >>> @register_synaray_serializable(package="my_project")
    ... def my_reward(y_true, y_pred):
    ...     return 1.0
    >>> serialize_object(my_reward)["registered_name"]
    'my_project>my_reward'
    >>> deserialize_object(serialize_object(my_reward), safe_mode=True) is my_reward
    True
    >>> deserialize_object({"module": "os", "class_name": "system",
    ...                     "config": {"command": "true"}}, safe_mode=True)
    Traceback (most recent call last):
    ...
    synaray.errors.ConfigError: <config>: refusing to import 'os:system': ...
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from synaray.errors import ConfigError

__all__ = [
    "ALLOW_HINT",
    "SafeModeWarning",
    "class_path",
    "data_model_is_safe",
    "deserialize_object",
    "enable_unsafe_deserialization",
    "get_registered_name",
    "get_registered_object",
    "import_data_model",
    "register_synaray_serializable",
    "resolve_safe_mode",
    "safe_mode_scope",
    "serialize_object",
]

_REGISTRY: dict[str, Any] = {}
_NAMES: dict[int, str] = {}

#: How to allow what safe mode refused (the end of every refusal message).
ALLOW_HINT = ("If you trust this file, load it with `Program.load(path, safe_mode=False)` or "
              "the `--trust-code` flag of `synaray evaluate`/`fit`/`resume`, pass the object "
              "in `custom_objects`, or import and register it with "
              "@synaray.saving.register_synaray_serializable().")


class SafeModeWarning(UserWarning):
    """A loaded file named code that safe mode did not import (the file still loads)."""


@dataclass(frozen=True)
class _Scope:
    safe_mode: bool | None
    custom_objects: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<config>"


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("synaray_load_scope",
                                                                       default=None)
_UNSAFE_EVERYWHERE = False


def enable_unsafe_deserialization() -> None:
    """Trust every file this process loads from now on (no safe mode anywhere).

    Example:
        >>> enable_unsafe_deserialization()  # doctest: +SKIP
    """
    global _UNSAFE_EVERYWHERE
    _UNSAFE_EVERYWHERE = True


def resolve_safe_mode(safe_mode: bool | None, default: bool) -> bool:
    """Whether to load in safe mode: `safe_mode` if given, else the enclosing
    `safe_mode_scope`'s, else False after `enable_unsafe_deserialization()`, else `default`.

    Example:
        >>> resolve_safe_mode(None, default=True), resolve_safe_mode(False, default=True)
        (True, False)
    """
    if safe_mode is not None:
        return bool(safe_mode)
    scope = _SCOPE.get()
    if scope is not None and scope.safe_mode is not None:
        return scope.safe_mode
    return False if _UNSAFE_EVERYWHERE else default


@contextlib.contextmanager
def safe_mode_scope(safe_mode: bool | None = True, *,
                    custom_objects: Mapping[str, Any] | None = None,
                    source: str | None = None) -> Iterator[None]:
    """Within the block, loading uses `safe_mode` (None: unchanged), also sees
    `custom_objects`, and names `source` (the file) in its messages.

    Example:
        >>> with safe_mode_scope(False):
        ...     resolve_safe_mode(None, default=True)
        False
    """
    outer = _SCOPE.get()
    objects = {**(outer.custom_objects if outer else {}), **(custom_objects or {})}
    if safe_mode is None and outer is not None:
        safe_mode = outer.safe_mode
    token = _SCOPE.set(_Scope(safe_mode, objects,
                              source or (outer.source if outer else "<config>")))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _source() -> str:
    scope = _SCOPE.get()
    return scope.source if scope else "<config>"


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


def _is_synaray_module(module: Any) -> bool:
    return isinstance(module, str) and (module == "synaray" or module.startswith("synaray."))


def _locate(module: str, name: str) -> Any:
    if not module:
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError, TypeError):
        return None


def _malformed(config: Mapping[str, Any], source: str) -> ConfigError:
    shown = {k: config.get(k) for k in ("module", "class_name", "registered_name")}
    return ConfigError(f"{source}: malformed object description {shown}: expected string "
                       "`module`, `class_name` and `registered_name` (or null) and, for a "
                       "function, its name as a string in `config`.")


def _from_objects(objects: Mapping[str, Any], name: str, registered: str | None) -> Any:
    return objects.get(name) or (objects.get(registered) if registered else None)


def _from_registry(registered: str | None, module: str, safe: bool, source: str) -> Any:
    obj = _REGISTRY.get(registered) if registered else None
    if obj is not None and safe and module and module != getattr(obj, "__module__", module):
        # A file naming a registered object with another module would make a process that
        # lacks the registration (a Ray worker) import that module instead.
        raise ConfigError(
            f"{source}: {registered!r} is registered from module "
            f"{getattr(obj, '__module__', '?')!r} but the file names module {module!r}; "
            f"refused in safe mode. {ALLOW_HINT}")
    return obj


def _check_own_object(obj: Any, ref: str, is_function: bool, source: str) -> None:
    """In safe mode an imported object must be synaray's own serializable class or function
    (not, say, `os.system` re-exported by a synaray module)."""
    defined_in = getattr(obj, "__module__", None)
    serializable = (inspect.isfunction(obj) if is_function else
                    inspect.isclass(obj) and (hasattr(obj, "from_config")
                                              or hasattr(obj, "get_config")))
    if not _is_synaray_module(defined_in) or not serializable:
        kind = "function" if is_function else "serializable class"
        raise ConfigError(f"{source}: refusing to load {ref!r}: it is not a synaray {kind} "
                          f"(defined in {defined_in!r}). {ALLOW_HINT}")


def _resolve(config: Mapping[str, Any], objects: Mapping[str, Any], safe: bool,
             source: str) -> Any:
    class_name, inner = config["class_name"], config["config"]
    is_function = class_name == "function"
    name = inner if is_function else class_name
    registered = config.get("registered_name")
    module = config.get("module") or ""
    if not all(isinstance(v, str) for v in (name, module)) or \
            not isinstance(registered, str | None):
        raise _malformed(config, source)
    obj = _from_objects(objects, name, registered)
    if obj is None:
        obj = _from_registry(registered, module, safe, source)
    if obj is not None:
        return obj
    ref = f"{module}:{name}" if module else (registered or name)
    if safe and not _is_synaray_module(module):
        raise ConfigError(
            f"{source}: refusing to import {ref!r}"
            + (f" (registered name {registered!r}, not registered in this process)"
               if registered else "")
            + f": in safe mode a file may name only synaray's own objects. {ALLOW_HINT}")
    obj = _locate(module, name)
    if obj is None:
        where = "" if source == "<config>" else f"{source}: "
        raise ConfigError(
            f"{where}Cannot find {registered or name!r} (module {module!r}) while "
            "loading. Register it with @synaray.saving.register_synaray_serializable() or pass "
            "it in `custom_objects`.")
    if safe:
        _check_own_object(obj, ref, is_function, source)
    return obj


def deserialize_object(config: Any, custom_objects: Mapping[str, Any] | None = None,
                       safe_mode: bool | None = None) -> Any:
    """Rebuild what `serialize_object` described (plain values pass through).

    Args:
        config: a `{"module", "class_name", "config", "registered_name"}` dict (or a list of
            them, or a plain value).
        custom_objects: name -> class or function, tried first (by class or function name
            and by registered name); they also reach the nested objects.
        safe_mode: True: resolve only synaray's own objects, registered objects and
            `custom_objects`; anything else is refused before it is imported. None: the
            enclosing `safe_mode_scope` decides (every loader of files opens one), outside
            of one the config is trusted (this process or its driver made it).

    Raises:
        ConfigError: an object that cannot be found, or one refused in safe mode (the
            message names it, the file being loaded and how to allow it).
    """
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        if isinstance(config, list):
            return [deserialize_object(c, custom_objects, safe_mode) for c in config]
        return config
    scope = _SCOPE.get()
    safe = resolve_safe_mode(safe_mode, default=False)
    objects = {**(scope.custom_objects if scope else {}), **(custom_objects or {})}
    source = scope.source if scope else "<config>"
    obj = _resolve(config, objects, safe, source)
    if config["class_name"] == "function":
        return obj
    inner = config["config"]
    with safe_mode_scope(safe, custom_objects=objects, source=source):
        if hasattr(obj, "from_config"):
            return obj.from_config(inner)
        if not isinstance(inner, dict):
            raise _malformed(config, source)
        return obj(**inner)


def class_path(cls: type | None) -> str | None:
    """`module:QualName` of an importable class (None for local or missing classes)."""
    if cls is None or "<locals>" in cls.__qualname__:
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def data_model_is_safe(path: str) -> bool:
    """Whether safe mode looks up the data model at `path` (`module:QualName`) without
    importing anything: synaray's own modules and modules already imported."""
    module = path.partition(":")[0]
    return _is_synaray_module(module) or module in sys.modules


def _data_model_class(module: str, qualname: str, safe: bool, path: str,
                     source: str) -> Any:
    """The object at `module:qualname`; in safe mode only from synaray's modules or modules
    already imported (looking an attribute up runs no code), else None with a warning."""
    if safe and not _is_synaray_module(module):
        obj: Any = sys.modules.get(module)
        if obj is None or not data_model_is_safe(path):
            warnings.warn(
                f"{source}: data model {path!r} was not imported: in safe mode a file may "
                "import only synaray's own modules; the program uses its JSON schema instead. "
                f"{ALLOW_HINT}", SafeModeWarning, stacklevel=4)
            return None
    else:
        try:
            obj = importlib.import_module(module)
        except (ImportError, ValueError, TypeError):
            return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def import_data_model(path: str | None, schema: dict) -> type | None:
    """The DataModel class at `module:QualName` if it still has `schema`, else None.

    In safe mode (see `deserialize_object`) only `custom_objects` (by class name or path),
    synaray's own modules and modules already imported are used: the module of a data model
    named by a file is not imported; the program then uses the saved JSON schema (a
    `SafeModeWarning` says so).
    """
    if not path:
        return None
    if not isinstance(path, str):
        raise ConfigError(f"{_source()}: malformed data model reference {path!r}: expected "
                          "a 'module:QualName' string or null.")
    from synaray.data.data_model import DataModel

    scope = _SCOPE.get()
    module, _, qualname = path.partition(":")
    objects = scope.custom_objects if scope else {}
    obj = objects.get(path) or objects.get(qualname)
    if obj is None and module and qualname:
        obj = _data_model_class(module, qualname, resolve_safe_mode(None, default=False),
                                path, _source())
    if isinstance(obj, type) and issubclass(obj, DataModel) and obj.get_schema() == schema:
        return obj
    return None
