"""The stored `run_config.json`: what `synaray fit` ran, so `synaray resume` can rebuild it.

`write_run_config` stores the resolved config (its run name and storage filled in);
`load_saved_run_config` reads it back for a resume and decides whether the code it names may
be imported: anyone with write access to the storage may have written it, so it names code
outside synaray only with `trust_code`, or when it names the same code and program as the
config the run was started with (`given`; the comparison is
`synaray.config.checks.check_stored_run_config`). Otherwise it is checked and built in safe
mode (`synaray.saving`).

Example:
    >>> from synaray.runs.run_config import load_saved_run_config
    >>> config = load_saved_run_config("runs/", "demo")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synaray.errors import ConfigError
from synaray.runs.files import RUN_CONFIG
from synaray.runs.naming import open_existing_run

__all__ = ["load_saved_run_config", "read_run_config", "write_run_config"]


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


def load_saved_run_config(storage: str, run_name: str,
                          overrides: Mapping[str, Any] | None = None, *,
                          trust_code: bool = False, given: Any = None) -> Any:
    """The resolved config that `run_fit` saved in a run's folder (for `synaray resume`).

    Local files are not required to exist: a resumed run reads its training data from the
    run's folder. See the module docstring for when the code it names may be imported. Keep
    `run_fit` of an untrusted config inside `synaray.saving.safe_mode_scope(True)` too, as
    `synaray resume` does.

    Raises:
        ConfigError: no such run, no run_config.json in it, or code that is not trusted.
    """
    from synaray.config.checks import check_run_config, check_stored_run_config
    from synaray.config.loading import parse_run_config
    from synaray.saving import safe_mode_scope

    store = open_existing_run(storage, run_name)
    data = read_run_config(store)
    source = store.display_uri(RUN_CONFIG)
    config = parse_run_config(data, source, overrides, check=False)
    trusted = check_stored_run_config(config, source, trust_code, given)
    with safe_mode_scope(not trusted, source=source):
        check_run_config(config, source, check_files=False)
    return config
