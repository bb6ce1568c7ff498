"""`find_models`: the model clients a program, reward or optimizer will call; `shipped_keys`:
their API keys, as a driver ships them to its actors (`synaray.lm.keys`).

It walks the attributes of synaray objects (and of user subclasses of them), lists,
tuples, sets and dict values, and returns each `LanguageModel` / `EmbeddingModel` once.
Objects of other libraries are not entered (a dataset's rows, numpy arrays, pyarrow
tables stay opaque), so the walk is cheap.

Example:
    >>> from synaray.lm import LanguageModel
    >>> lm = LanguageModel("openai/x", cache=False)
    >>> [m.model for m in find_models([{"judge": [lm, lm]}])]
    ['openai/x']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from synaray.lm.base import ModelClient
from synaray.lm.keys import KeyId, key_id, resolve_api_key

__all__ = ["find_models", "shipped_keys"]

_MAX_NODES = 200_000


def _is_synaray(obj: Any) -> bool:
    return any(getattr(cls, "__module__", "").startswith("synaray.")
               for cls in type(obj).__mro__)


def find_models(objects: Iterable[Any]) -> list[Any]:
    """Every `synaray.lm.base.ModelClient` reachable from `objects`, in walk order."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = list(objects)[::-1]
    while stack and len(seen) < _MAX_NODES:
        obj = stack.pop()
        if obj is None or isinstance(obj, str | bytes | int | float | bool) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, ModelClient):
            found.append(obj)
        elif isinstance(obj, dict):
            stack.extend(reversed(list(obj.values())))
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(reversed(list(obj)))
        elif _is_synaray(obj) and not isinstance(obj, type):
            stack.extend(reversed(list(getattr(obj, "__dict__", {}).values())))
    return found


def shipped_keys(objects: Iterable[Any]) -> list[tuple[KeyId, str]]:
    """The keys of every model in `objects` (programs, rewards, optimizers) as this process
    resolves them: what actors need in memory to call the same models.

    A list of pairs, not a dict, so it passes through Ray as a plain argument.

    Example:
        >>> from synaray.lm import LanguageModel
        >>> shipped_keys([LanguageModel("openai/x", api_key="sk-demo", cache=False)])
        [(('openai/x', None, None), 'sk-demo')]
    """
    keys: dict[KeyId, str] = {}
    for model in find_models(objects):
        key = resolve_api_key(model)
        if key:
            keys.setdefault(key_id(model), key)
    return list(keys.items())
