"""The `sweep:` section of a run config: which settings vary, and how trials are drawn.

A sweep file is a run config (`synaray fit` reads the same file) plus one `sweep:` section::

    sweep:
      method: grid               # grid | random
      metric: val_reward         # what ranks the trials
      mode: max
      parameters:                # dotted keys of the run config
        language_model.temperature: {values: [0.0, 0.7]}
        optimizer.population_size: {grid: [2, 4]}

Parameter forms:

- `values: [...]`: every value in a grid sweep; one drawn at random per trial in a random sweep.
- `grid: [...]`: always crossed with the other grid axes (also in a random sweep: each grid
  point gets `num_samples` random draws, as in Ray Tune).
- `choice: [...]`: one value drawn at random per trial (random sweeps only).
- `uniform: [lo, hi]`: a float drawn uniformly in [lo, hi] (random sweeps only).

`expand_trials(spec)` turns the section into the ordered list of trials, each a dict
`{dotted.key: value}` of overrides for `load_run_config`; it is pure (no Ray) and the random
draws depend only on `seed`.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from synaray.errors import ConfigError

__all__ = ["SweepParameter", "SweepSpec", "expand_trials", "parse_sweep_spec"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_FORMS = ("values", "grid", "choice", "uniform")
#: Run-config keys a sweep sets itself for every trial (one run each).
RESERVED_PREFIXES = ("sweep",)


class SweepParameter(BaseModel):
    """How one setting varies: exactly one of `values`, `grid`, `choice`, `uniform`.

    Example:
        >>> SweepParameter(values=[2, 4]).kind
        'values'
        >>> SweepParameter(uniform=(0.0, 1.0)).kind
        'uniform'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    values: list[Any] | None = Field(default=None, min_length=1)
    grid: list[Any] | None = Field(default=None, min_length=1)
    choice: list[Any] | None = Field(default=None, min_length=1)
    uniform: tuple[float, float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping with one of {', '.join(_FORMS)} "
                             f"(for example {{values: [1, 2]}}), received {data!r}")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SweepParameter:
        given = [form for form in _FORMS if getattr(self, form) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of {', '.join(_FORMS)}, "
                             f"received {', '.join(given) or 'none'}")
        if self.uniform is not None and not self.uniform[0] < self.uniform[1]:
            raise ValueError(f"uniform needs [lo, hi] with lo < hi, received "
                             f"{list(self.uniform)}")
        return self

    @property
    def kind(self) -> str:
        """Which form this parameter uses."""
        return next(form for form in _FORMS if getattr(self, form) is not None)

    @property
    def is_random(self) -> bool:
        """Whether the value is drawn at random (in a random sweep)."""
        return self.kind in ("choice", "uniform")


class SweepSpec(BaseModel):
    """The `sweep:` section of a sweep file.

    Args:
        method: "grid" (every combination) or "random" (`num_samples` draws per grid point).
        num_samples: random sweeps only: draws per grid point (>= 1).
        seed: the seed of the random draws (same seed, same trials).
        metric: the logged value that ranks trials: "val_reward" (default) or "reward".
        mode: "max" (default) or "min".
        name: the sweep's name (folder under the storage); default from the config file name.
        max_concurrent_trials: trials run at once (default: as many as the CPUs allow).
        cpus_per_trial: CPUs Ray reserves for each trial (default 1: 2 trials on 2 CPUs).
        trial_engine: "local" (default) runs each trial's evaluations in the trial's own
            process (a trial is already a Ray actor); "config" keeps the config's `engine`.
        parameters: dotted run-config keys and how each varies.

    Example:
        >>> spec = SweepSpec.model_validate({"method": "grid", "parameters": {
        ...     "language_model.temperature": {"values": [0.0, 0.7]},
        ...     "optimizer.population_size": {"grid": [2, 4]}}})
        >>> len(expand_trials(spec))
        4
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["grid", "random"] = "grid"
    num_samples: int | None = Field(default=None, ge=1)
    seed: int = 0
    metric: Literal["val_reward", "reward"] = "val_reward"
    mode: Literal["max", "min"] = "max"
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    cpus_per_trial: float = Field(default=1.0, gt=0)
    trial_engine: Literal["local", "config"] = "local"
    parameters: dict[str, SweepParameter] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        for key in self.parameters:
            if not _KEY.match(key):
                raise ValueError(f"sweep.parameters[{key!r}]: not a dotted run-config key "
                                 "(for example optimizer.population_size)")
            if key.split(".")[0] in RESERVED_PREFIXES:
                raise ValueError(f"sweep.parameters[{key!r}]: a sweep cannot vary its own "
                                 "section")
        if self.method == "grid":
            if self.num_samples is not None:
                raise ValueError("sweep.num_samples: only for method 'random'; a grid "
                                 "sweep runs every combination once")
            for key, param in self.parameters.items():
                if param.is_random:
                    raise ValueError(f"sweep.parameters[{key!r}]: {param.kind} draws at "
                                     "random: use method: random, or list the values with "
                                     "values or grid")
        elif self.num_samples is None:
            raise ValueError("sweep.num_samples: method 'random' needs it (the number of "
                             "draws per grid point)")
        return self


def _location(loc: tuple) -> str:
    text = "sweep"
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "parameters" and isinstance(part, str):
            text += f"[{part!r}]"
        elif isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}"
    return text


def parse_sweep_spec(section: Any) -> SweepSpec:
    """Validate a `sweep:` mapping; a `ConfigError` names every bad key.

    Example:
        >>> parse_sweep_spec({"parameters": {"optimizer.seed": {"values": [0, 1]}}}).method
        'grid'
    """
    if isinstance(section, SweepSpec):
        return section
    if not isinstance(section, dict):
        raise ConfigError(f"The `sweep` section must be a mapping with `parameters`, "
                          f"received {type(section).__name__}: {section!r}")
    try:
        return SweepSpec.model_validate(section)
    except pydantic.ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            if error["loc"]:
                lines.append(f"{_location(tuple(error['loc']))}: {message}")
            else:  # a check across fields: the message starts with the key it is about
                lines.append(message)
        # one line: the CLI shows the first line of an error
        raise ConfigError("Invalid sweep section: " + "; ".join(lines)) from None


def _grid_points(spec: SweepSpec, enumerate_values: bool) -> list[dict[str, Any]]:
    axes = [(key, param.grid if param.grid is not None else param.values)
            for key, param in spec.parameters.items()
            if param.grid is not None or (enumerate_values and param.values is not None)]
    keys = [key for key, _ in axes]
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(values for _, values in axes))]


def _draw(param: SweepParameter, rng: random.Random) -> Any:
    if param.uniform is not None:
        return rng.uniform(*param.uniform)
    return rng.choice(param.choice if param.choice is not None else param.values)


def expand_trials(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's trials in order: one `{dotted.key: value}` dict of overrides each.

    Grid: the cartesian product of every axis (the first parameter varies slowest).
    Random: for each grid point, `num_samples` trials whose other parameters are drawn with
    `random.Random(seed)`, so the same seed gives the same trials.

    Example:
        >>> spec = parse_sweep_spec({"method": "random", "num_samples": 2, "seed": 1,
        ...                          "parameters": {"a.b": {"uniform": [0, 1]}}})
        >>> [round(t["a.b"], 3) for t in expand_trials(spec)]
        [0.134, 0.847]
    """
    if spec.method == "grid":
        return _grid_points(spec, enumerate_values=True)
    rng = random.Random(spec.seed)
    trials = []
    for point in _grid_points(spec, enumerate_values=False):
        for _ in range(spec.num_samples or 1):
            trial = {}
            for key, param in spec.parameters.items():
                trial[key] = point[key] if key in point else _draw(param, rng)
            trials.append(trial)
    return trials
