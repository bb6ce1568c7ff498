"""The run config: pydantic models of every section, unknown keys refused (`extra="forbid"`).

A run config names what to optimize (a built-in `task`, or a `program` and its `data`), how
to score it (`reward`, `metrics`), how to search (`optimizer`, `training`, `budget`), which
model answers (`model`), where evaluations run (`engine`) and where the run is kept
(`storage`, `run_name`). Shorthands are normalised before validation: `task: NAME`,
`model: NAME`, `reward: NAME`, `optimizer: NAME` and a metric `NAME` stand for
`{name: NAME}` (`{model: NAME}` for the model).

These models check shapes, types and ranges. What needs an import (a reward or optimizer
name, an optimizer setting, a `module:function`, a data file) is checked by
`synaray.config.checks`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

__all__ = [
    "BudgetConfig",
    "CircuitBreakerConfig",
    "ComponentConfig",
    "DataConfig",
    "EngineConfig",
    "ModelConfig",
    "ProgramConfig",
    "RunConfig",
    "SplitLimits",
    "TaskConfig",
    "TrainingConfig",
]

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_import_path(value: str | None, what: str = "function") -> str | None:
    """`package.module:name`, or a ValueError saying what was expected."""
    if value is not None and not IMPORT_PATH.match(value):
        raise ValueError(f"expected a 'package.module:{what}' string "
                         f"(such as 'examples.programs:build_qa')")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskConfig(_Section):
    """A built-in task (`synaray.datasets.TASKS`): its one-Generator program and its data.

    Example:
        >>> TaskConfig(name="sports_understanding", n_train=30, n_val=30).n_test
        0
    """

    name: str
    n_train: int = Field(default=100, ge=1)
    n_val: int = Field(default=100, ge=0)
    n_test: int = Field(default=0, ge=0)


class ProgramConfig(_Section):
    """Where the program comes from: a builder function, or a saved program file.

    `builder` is `"module:function"`, called (awaited when async) with the keyword arguments
    it declares among `language_model` (from the `model` section), `input_model`,
    `output_model` (the data classes) and `config` (the RunConfig), plus `args`.

    Example:
        >>> ProgramConfig(builder="examples.programs:build_qa").args
        {}
    """

    builder: str | None = None
    path: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("builder")
    @classmethod
    def _builder_path(cls, value: str | None) -> str | None:
        return check_import_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> ProgramConfig:
        if (self.builder is None) == (self.path is None):
            raise ValueError("expected exactly one of `builder` ('module:function') and "
                             "`path` (a saved program .json)")
        if self.path is not None and self.args:
            raise ValueError("`args` applies to `builder` only")
        return self


class SplitLimits(_Section):
    """At most this many rows per split (None: all). `limit: N` sets all three.

    Example:
        >>> SplitLimits(train=50).test is None
        True
    """

    train: int | None = Field(default=None, ge=1)
    validation: int | None = Field(default=None, ge=1)
    test: int | None = Field(default=None, ge=1)


class DataConfig(_Section):
    """Data files (local paths or URIs such as `s3://bucket/key`), JSONL or Parquet.

    Field maps go from a model field to the column that fills it (default: same names).

    Example:
        >>> DataConfig(train="train.jsonl", input_model="m:Q", output_model="m:A").id_field
        'id'
    """

    train: str
    validation: str | None = None
    test: str | None = None
    format: Literal["jsonl", "parquet"] | None = None
    input_model: str
    output_model: str
    input_fields: dict[str, str] | None = None
    output_fields: dict[str, str] | None = None
    id_field: str = "id"
    limit: SplitLimits | None = None

    @field_validator("input_model", "output_model")
    @classmethod
    def _class_path(cls, value: str) -> str:
        check_import_path(value, "Class")
        return value

    @field_validator("limit", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        """`limit: N` is `limit: {train: N, validation: N, test: N}`."""
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError("expected an integer >= 1")
            return {"train": value, "validation": value, "test": value}
        if value is not None and not isinstance(value, dict):
            raise ValueError("expected an integer >= 1 or a mapping {train, validation, test}")
        return value

    def limit_of(self, split: str) -> int | None:
        return getattr(self.limit, split) if self.limit is not None else None


class ModelConfig(_Section):
    """The language model of the program (and of the optimizer, unless it names its own).

    API keys never go in a config: `api_key_env` names the environment variable holding it.
    `local/smollm2-135m` is the bundled local model.

    Example:
        >>> ModelConfig(model="local/smollm2-135m").temperature
        0.0
    """

    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int | None = Field(default=512, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    retries: int = Field(default=4, ge=0)
    cache: bool = True
    max_concurrency: int = Field(default=8, ge=1)
    structured_output: Literal["auto", "json_schema", "json_object", "grammar", "none"] = "auto"


class ComponentConfig(BaseModel):
    """A reward, metric or optimizer: its `name` plus constructor settings.

    The settings are checked against the constructor of what `name` names
    (`synaray.config.checks`), so they are free-form here.

    Example:
        >>> ComponentConfig(name="population_search", population_size=3).settings
        {'population_size': 3}
    """

    model_config = ConfigDict(extra="allow")

    name: str

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CircuitBreakerConfig(_Section):
    """When a run stops because its LM calls keep failing (`synaray.lm.circuit_breaker`).

    Example:
        >>> CircuitBreakerConfig(window=50).max_failure_rate
        0.5
    """

    enabled: bool = True
    first_calls: int = Field(default=20, ge=0)
    window: int = Field(default=100, ge=0)
    max_failure_rate: float = Field(default=0.5, gt=0, le=1)

    def to_fit_argument(self) -> dict[str, Any] | bool:
        """What `program.fit(circuit_breaker=...)` takes: False when off, else settings."""
        return self.model_dump(exclude={"enabled"}) if self.enabled else False


class TrainingConfig(_Section):
    """Epochs, minibatch size and seed of the search.

    `validation_split` holds out the end of the training data when there is no validation
    data. `preflight` (default on, unless `SYNARAY_PREFLIGHT=0`) checks each model with one
    cheap request before the run; `circuit_breaker` (its settings; `enabled: false` for
    off) stops a run whose LM calls keep failing.

    Example:
        >>> TrainingConfig(epochs=2).batch_size
        32
    """

    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=32, ge=1)
    seed: int = 0
    validation_split: float = Field(default=0.0, ge=0.0, lt=1.0)
    preflight: bool | None = None
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)


class BudgetConfig(_Section):
    """Limits of the search (the first one reached stops it); see `synaray.optimizers.Budget`.

    Example:
        >>> BudgetConfig(lm_calls=2000).to_budget_kwargs()
        {'max_lm_calls': 2000}
    """

    generations: int | None = Field(default=None, ge=1)
    lm_calls: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    cost: float | None = Field(default=None, gt=0)
    wall_time_s: float | None = Field(default=None, gt=0)
    target_reward: float | None = None

    def to_budget_kwargs(self) -> dict[str, Any]:
        names = {"generations": "max_generations", "lm_calls": "max_lm_calls",
                 "tokens": "max_tokens", "cost": "max_cost", "wall_time_s": "max_time_s",
                 "target_reward": "target_reward"}
        return {names[k]: v for k, v in self.model_dump(exclude_none=True).items()}


class RateLimitConfig(_Section):
    """A model's rate limits under Ray (see `synaray.lm.rate_limit.RateLimits`).

    Example:
        >>> RateLimitConfig(requests_per_minute=600).tokens_per_minute is None
        True
    """

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)


class EngineConfig(_Section):
    """Where evaluations run: `local` (asyncio, in-process) or `ray` (actors).

    `address` (ray): None starts a Ray cluster on this machine; `auto` or `host:port` joins
    one. `num_evaluators`, `max_inflight`, `chunk_size` and `rate_limits` apply to ray;
    `max_concurrency` is LM calls in flight (per evaluator under ray). `env_vars` (ray):
    names of variables of this process given to the actors through Ray's runtime env
    (their values reach Ray's logs: prefer the cluster's own environment).

    Example:
        >>> EngineConfig(type="ray", num_evaluators=2).address is None
        True
    """

    type: Literal["local", "ray"] = "local"
    address: str | None = None
    num_evaluators: int = Field(default=2, ge=1)
    max_concurrency: int = Field(default=8, ge=1)
    max_inflight: int = Field(default=2, ge=1)
    chunk_size: int = Field(default=32, ge=1)
    rate_limits: dict[str, RateLimitConfig] | None = None
    env_vars: list[str] | None = None


def _named(value: Any, key: str = "name") -> Any:
    if isinstance(value, str):
        return {key: value}
    if value is not None and not isinstance(value, dict | BaseModel):
        raise ValueError(f"expected a name (a string) or a mapping with `{key}` and settings")
    return value


class RunConfig(_Section):
    """A whole run. Load one with `synaray.config.load_run_config(path)`.

    Example:
        >>> config = RunConfig(task="sports_understanding", optimizer="random_few_shot",
        ...                    model="local/smollm2-135m")
        >>> config.task.name, config.optimizer.name, config.engine.type
        ('sports_understanding', 'random_few_shot', 'local')
    """

    run_name: str | None = None
    storage: str | None = None
    task: TaskConfig | None = None
    program: ProgramConfig | None = None
    data: DataConfig | None = None
    model: ModelConfig | None = None
    reward: ComponentConfig | None = None
    metrics: list[ComponentConfig] = Field(default_factory=list)
    optimizer: ComponentConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    _source: str = PrivateAttr(default="<config>")

    @property
    def source(self) -> str:
        """The file (or other source) the config was read from, named in error messages."""
        return self._source

    @field_validator("task", "reward", "optimizer", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        return _named(value)

    @field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return _named(value, "model")

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_shorthands(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [{"name": v} if isinstance(v, str) else v for v in value]

    @field_validator("run_name")
    @classmethod
    def _run_name(cls, value: str | None) -> str | None:
        if value is not None and not RUN_NAME.match(value):
            raise ValueError("expected a name of letters, digits, '.', '_' and '-' (it names "
                             "a folder and a Ray actor)")
        return value

    @model_validator(mode="after")
    def _what_to_optimize(self) -> RunConfig:
        if self.task is not None and (self.program is not None or self.data is not None):
            raise ValueError("expected either `task` (a built-in task brings its program and "
                             "data) or `program` with `data`, not both")
        if self.task is None and (self.program is None or self.data is None):
            missing = [k for k in ("program", "data") if getattr(self, k) is None]
            raise ValueError(f"expected `task`, or `program` and `data` (missing: "
                             f"{', '.join(missing)})")
        if self.task is None and self.reward is None:
            raise ValueError("expected a `reward` (a built-in task has a default one)")
        return self

    def uses_ray(self) -> bool:
        return self.engine.type == "ray"
