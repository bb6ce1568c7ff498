"""Run configs: a whole optimization run described in a YAML, TOML or JSON file.

`load_run_config(path, overrides)` reads and validates a config into a `RunConfig`
(pydantic models, unknown keys refused; every error names the file, the dotted key, what
was expected and what was received). `run_fit(config, callbacks=...)` runs it and returns
a `FitOutcome`. `synaray fit CONFIG` is these two calls.

A config, in YAML::

    task: {name: sports_understanding, n_train: 30, n_val: 30}
    model: local/smollm2-135m
    optimizer: {name: population_search, population_size: 3}
    training: {epochs: 1, batch_size: 10}
    engine: {type: ray, num_evaluators: 2}

Example:
    >>> from synaray.config import load_run_config, run_fit  # doctest: +SKIP
    >>> config = load_run_config("examples/sports_population_search.yaml",
    ...                          overrides={"engine.type": "local"})
    >>> outcome = run_fit(config)  # doctest: +SKIP
    >>> outcome.best_program_path  # doctest: +SKIP
    '/home/me/synaray_runs/sports_understanding-20250101-120000-1a2b3c/best_program.json'
"""

from synaray.config.loading import (
    apply_overrides,
    load_run_config,
    parse_override,
    parse_run_config,
    read_config_file,
)
from synaray.config.runner import (
    RUN_CONFIG_FILE,
    FitOutcome,
    load_saved_run_config,
    resolve_storage,
    run_fit,
    run_fit_async,
)
from synaray.config.schema import RunConfig

__all__ = [
    "RUN_CONFIG_FILE",
    "FitOutcome",
    "RunConfig",
    "apply_overrides",
    "load_run_config",
    "load_saved_run_config",
    "parse_override",
    "parse_run_config",
    "read_config_file",
    "resolve_storage",
    "run_fit",
    "run_fit_async",
]
