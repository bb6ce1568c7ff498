"""The stored `run_config.json`: what `synaray fit` ran, so `synaray resume` can rebuild it.

`write_run_config` stores the resolved config (its run name and storage filled in);
`read_run_config` reads it back as a mapping. Parsing it, and deciding whether the code it
names may be imported (anyone with write access to the storage may have written it), is the
config layer's: `synaray.config.runner.load_saved_run_config`, which compares it with the
config the run was started with (`synaray.config.checks.check_stored_run_config`).

Example:
    >>> import tempfile
    >>> from synaray.runs.storage import RunStorage
    >>> store = RunStorage(tempfile.mkdtemp(), "demo")
    >>> store.write_json("run_config.json", {"training": {"epochs": 2}})
    >>> read_run_config(store)["run_name"]
    'demo'
"""

from __future__ import annotations

from typing import Any

from synaray.errors import ConfigError
from synaray.runs.files import RUN_CONFIG

__all__ = ["read_run_config", "write_run_config"]


def write_run_config(store: Any, config: Any) -> None:
    """Store `config` (a `RunConfig`) resolved: its `run_name` and `storage` are the run's."""
    resolved = config.model_copy(update={"run_name": store.run_name, "storage": store.storage})
    store.write_json(RUN_CONFIG, resolved.model_dump(mode="json"))


def read_run_config(store: Any) -> dict[str, Any]:
    """The stored config as a mapping, its run name and storage those of `store`.

    Raises:
        ConfigError: the run has no run_config.json.
    """
    if not store.exists(RUN_CONFIG):
        raise ConfigError(f"Run {store.run_name!r} in {store.display_uri('')} has no "
                          f"{RUN_CONFIG} (it was not started by `synaray fit`); resume it from "
                          "Python with program.fit(..., resume=True).")
    data = store.read_json(RUN_CONFIG)
    if not isinstance(data, dict):
        raise ConfigError(f"{store.display_uri(RUN_CONFIG)}: expected a JSON object (a run "
                          f"config), got {type(data).__name__}.")
    data.update(run_name=store.run_name, storage=store.storage)
    return data
