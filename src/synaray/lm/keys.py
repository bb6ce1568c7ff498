"""API keys in the processes that call a model, without writing them anywhere.

A model's config (what program JSON, checkpoints and run configs hold) never carries the key
itself, only `api_key_env`, the *name* of the variable that holds it. A process that rebuilt
a model from its config finds the key, in this order:

1. the model's own `api_key` (a literal given in this process),
2. the variable named by `api_key_env` in this process's environment,
3. a key the driver shipped to this process in memory (`install_keys`), for the same
   model, endpoint and variable name: how a Ray engine gives its actors a literal
   `api_key` (or the driver's value of `api_key_env`) as a method argument, a path that
   Ray keeps in memory and does not write to its logs or runtime env.

`synaray.lm.model_search.shipped_keys(objects)` is the driver's side: the keys of every
model found in `objects`.

Example:
    >>> install_keys([(("openai/x", None, None), "sk-demo")])
    >>> lookup_key("openai/x", None, None)
    'sk-demo'
    >>> install_keys({})
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["KeyId", "install_keys", "key_id", "lookup_key", "resolve_api_key"]

#: What a shipped key belongs to: (model, api_base, api_key_env).
KeyId = tuple[str, str | None, str | None]

_LOCK = threading.Lock()
_INSTALLED: dict[KeyId, str] = {}


def key_id(model: Any) -> KeyId:
    """The identity of `model`'s key: its name, endpoint and key variable name."""
    return (str(model.model), getattr(model, "api_base", None),
            getattr(model, "api_key_env", None))


def resolve_api_key(model: Any) -> str | None:
    """The key `model` should send in this process (see the module docstring), or None."""
    literal = getattr(model, "api_key", None)
    if literal:
        return literal
    name = getattr(model, "api_key_env", None)
    if name and os.environ.get(name):
        return os.environ[name]
    return lookup_key(*key_id(model))


def lookup_key(model: str, api_base: str | None, api_key_env: str | None) -> str | None:
    """A key shipped to this process for that model, endpoint and variable, or None."""
    with _LOCK:
        return _INSTALLED.get((model, api_base, api_key_env))


def install_keys(keys: Mapping[KeyId, str] | Iterable[tuple[KeyId, str]] | None) -> None:
    """Make `keys` (from `model_search.shipped_keys` on the driver) this process's shipped keys.

    Called by actors with what each call brings; the previous set is replaced, so a key
    the driver no longer has is forgotten. None (a caller that ships no keys) changes
    nothing.
    """
    if keys is None:
        return
    items = keys.items() if isinstance(keys, Mapping) else keys
    fresh = {tuple(k): v for k, v in items if v}  # type: ignore[misc]
    with _LOCK:
        if fresh != _INSTALLED:
            _INSTALLED.clear()
            _INSTALLED.update(fresh)  # type: ignore[arg-type]
