"""`assert_config_round_trip(obj)`: the config round trip every public component must pass.

After Keras' `run_class_serialization_test`: get_config -> JSON -> from_config ->
get_config gives the same config, `serialize_object` -> JSON -> `deserialize_object` gives
an object of the same class with the same config, and the rebuilt object has the same
attribute names (`dir()`) as the original.
"""

from __future__ import annotations

import json
from typing import Any

from synaray.saving import deserialize_object, serialize_object

__all__ = ["assert_config_round_trip", "json_round_trip"]


def json_round_trip(value: Any) -> Any:
    """`value` written to JSON text and read back (fails if it is not plain JSON)."""
    return json.loads(json.dumps(value))


def assert_config_round_trip(obj: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """Check the config round trips of `obj` and return the object rebuilt from its config."""
    cls = type(obj)
    config = obj.get_config()
    assert isinstance(config, dict), f"{cls.__name__}.get_config() returned {type(config)}"
    loaded = json_round_trip(config)
    assert loaded == config, f"{cls.__name__}.get_config() is not plain JSON: {config!r}"

    rebuilt = cls.from_config(loaded)
    assert type(rebuilt) is cls
    assert json_round_trip(rebuilt.get_config()) == loaded, (
        f"{cls.__name__}: config changed in the round trip:\n{loaded}\n!=\n"
        f"{rebuilt.get_config()}")
    assert set(dir(rebuilt)) == set(dir(obj)), (
        f"{cls.__name__}: attributes differ after from_config: "
        f"{sorted(set(dir(rebuilt)) ^ set(dir(obj)))}")

    serialized = json_round_trip(serialize_object(obj))
    restored = deserialize_object(serialized, custom_objects)
    assert type(restored) is cls
    assert json_round_trip(restored.get_config()) == loaded
    return rebuilt
