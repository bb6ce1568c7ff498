"""`ComponentRegistry`: the names of one kind of component and `get(identifier)` for it.

`program.compile(reward=..., optimizer=..., metrics=[...])` accepts for each component a
name, a registered `package>name`, a config dict, a class, an instance or a function. Rewards,
metrics and optimizers each turn these into an instance with one registry of this class
(`synaray.rewards.get`, `synaray.metrics.get`, `synaray.optimizers.get`).

Example:
    >>> from synaray.rewards import ExactMatch, Reward, RewardFunctionWrapper
    >>> registry = ComponentRegistry(
    ...     "reward", Reward, classes=[ExactMatch], module="synaray.rewards",
    ...     wrap=lambda fn: RewardFunctionWrapper(fn=fn),
    ...     expected="a Reward class or instance, or a function")
    >>> registry.get("exact_match")
    <ExactMatch name=exact_match reduction=mean>
    >>> registry.get("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    synaray.errors.ConfigError: Could not interpret reward identifier: 'nope'. Known names: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from synaray.errors import ConfigError
from synaray.saving import deserialize_object, get_registered_object, serialize_object
from synaray.utils.naming import to_snake_case

__all__ = ["ComponentRegistry"]


class ComponentRegistry:
    """Known names of one kind of component, and how identifiers become instances.

    Args:
        kind: what messages call the component ("reward", "metric", "optimizer").
        base: its base class: an instance of it is returned as is.
        classes: the built-in classes, known by class name and snake-case name.
        module: the module a bare `{"class_name", "config"}` dict is resolved in.
        aliases: more names (`{"f1": TokenF1}`).
        fallback: names looked up after this registry's own (the metrics registry knows
            the reward names, whose rewards it wraps), not listed in messages.
        fallback_kind: what messages call the fallback names ("reward").
        buildable: classes a class identifier may be a subclass of, built without
            arguments (default: `base`).
        wrap: what turns an accepted non-instance (a function; a reward, for metrics) into
            a component; None: only instances and classes are accepted.
        expected: how messages end the list of what is accepted, after names and config
            dicts ("a Reward class or instance, or a function").
    """

    def __init__(self, kind: str, base: type, classes: Iterable[type], module: str, *,
                 aliases: Mapping[str, type] | None = None,
                 fallback: Mapping[str, type] | None = None,
                 fallback_kind: str = "other",
                 buildable: tuple[type, ...] | None = None,
                 wrap: Callable[[Any], Any] | None = None,
                 expected: str = "") -> None:
        classes = tuple(classes)
        self.kind = kind
        self.base = base
        self.classes = classes
        self.module = module
        self.names: dict[str, type] = {
            **{cls.__name__: cls for cls in classes},
            **{to_snake_case(cls.__name__): cls for cls in classes},
            **(aliases or {}),
        }
        self.fallback = dict(fallback or {})
        self.fallback_kind = fallback_kind
        self.buildable = buildable or (base,)
        self.wrap = wrap
        self.expected = expected or f"or a {base.__name__} class or instance"

    def lookup(self, name: str) -> Any:
        """The class (or function) a name stands for, or None."""
        return self.names.get(name) or self.fallback.get(name) or get_registered_object(name)

    def serialize(self, component: Any) -> dict[str, Any]:
        """The `{module, class_name, config, registered_name}` description of a component."""
        return serialize_object(component)

    def deserialize(self, config: dict[str, Any],
                    custom_objects: Mapping[str, Any] | None = None) -> Any:
        """Rebuild a component from `serialize`'s output (or a `{"class_name", "config"}`
        dict, resolved among this registry's names)."""
        if isinstance(config, dict) and not config.get("module"):
            config = {**config, "module": self.module}
        objects = {**self.fallback, **self.names, **(custom_objects or {})}
        return self.build(deserialize_object(config, objects), config)

    def build(self, obj: Any, identifier: Any) -> Any:
        """An instance from a class, an instance or (with `wrap`) a function."""
        if inspect.isclass(obj) and issubclass(obj, self.buildable):
            try:
                obj = obj()
            except (TypeError, ConfigError) as exc:
                raise ConfigError(f"Could not build {self.kind} {obj.__name__} from "
                                  f"identifier {identifier!r} without arguments: {exc} Pass "
                                  "an instance instead.") from exc
        if isinstance(obj, self.base):
            return obj
        if self.wrap is not None and callable(obj) and not inspect.isclass(obj):
            return self.wrap(obj)
        raise ConfigError(f"Could not interpret {self.kind} identifier: {identifier!r}. "
                          f"Expected None, a {self.kind} name (one of {sorted(self.names)}), "
                          f"a config dict, {self.expected}.")

    def get(self, identifier: Any) -> Any:
        """A component from None (None), a name, a config dict, a class, an instance or
        (with `wrap`) a function.

        Raises:
            ConfigError: "Could not interpret <kind> identifier ..." for anything else.
        """
        if identifier is None:
            return None
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        if isinstance(identifier, str):
            obj = self.lookup(identifier)
            if obj is None:
                more = f", {self.fallback_kind} names" if self.fallback else ""
                raise ConfigError(f"Could not interpret {self.kind} identifier: "
                                  f"{identifier!r}. Known names: {sorted(self.names)}{more}, "
                                  "or a registered 'package>name'.")
            return self.build(obj, identifier)
        return self.build(identifier, identifier)
