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
from typing import Annotated, Any, Literal

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
    "InputFieldConfig",
    "ModelConfig",
    "OutputFieldConfig",
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

    name: str = Field(description="The task's name (one of synaray.datasets.TASKS).")
    n_train: int = Field(default=100, ge=1, description="Training examples.")
    n_val: int = Field(default=100, ge=0, description="Validation examples.")
    n_test: int = Field(default=0, ge=0, description="Test examples (scored before and after "
                                                     "the search).")


class ProgramConfig(_Section):
    """Where the program comes from: a builder function, a saved program file, or the data.

    `builder` is `"module:function"`, called (awaited when async) with the keyword arguments
    it declares among `language_model` (from the `model` section), `input_model`,
    `output_model` (the data classes) and `config` (the RunConfig), plus `args`.
    With neither `builder` nor `path`, the program is built from `data.inputs` and
    `data.outputs`: one `Generator` (or a `ChainOfThought`, `kind`) with `instructions`.

    Example:
        >>> ProgramConfig(builder="examples.programs:build_qa").args
        {}
        >>> ProgramConfig(kind="chain_of_thought", instructions="Answer.").builder is None
        True
    """

    builder: str | None = Field(
        default=None, description="'module:function' that builds the program (the module is "
                                  "imported from the current directory).")
    path: str | None = Field(
        default=None, description="A saved program .json (a run's best_program.json), local "
                                  "or a URI.")
    args: dict[str, Any] = Field(
        default_factory=dict, description="More keyword arguments for `builder`.")
    kind: Literal["generator", "chain_of_thought"] = Field(
        default="generator", description="Without builder or path: the module the program "
                                         "built from `data.inputs`/`data.outputs` uses.")
    instructions: str | None = Field(
        default=None, description="Without builder or path: the task instructions of that "
                                  "module (the optimizer's starting point).")
    name: str | None = Field(
        default=None, description="Without builder or path: the program's name (default: "
                                  "the training file's name); it names the run folder.")

    @field_validator("builder")
    @classmethod
    def _builder_path(cls, value: str | None) -> str | None:
        return check_import_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> ProgramConfig:
        if self.builder is not None and self.path is not None:
            raise ValueError("expected one of `builder` ('module:function') and `path` (a "
                             "saved program .json), not both")
        if self.path is not None and self.args:
            raise ValueError("`args` applies to `builder` only")
        described = {"kind": self.kind != "generator", "instructions": self.instructions,
                     "name": self.name}
        extra = [k for k, v in described.items() if v]
        if extra and not self.from_data():
            raise ValueError(f"{', '.join(extra)}: only for a program built from "
                             "`data.inputs`/`data.outputs` (no `builder` or `path`)")
        return self

    def from_data(self) -> bool:
        """Whether the program is built from the data's field descriptions."""
        return self.builder is None and self.path is None


class SplitLimits(_Section):
    """At most this many rows per split (None: all). `limit: N` sets all three.

    Example:
        >>> SplitLimits(train=50).test is None
        True
    """

    train: int | None = Field(default=None, ge=1,
                              description="At most this many training rows (None: all).")
    validation: int | None = Field(default=None, ge=1,
                                   description="At most this many validation rows.")
    test: int | None = Field(default=None, ge=1, description="At most this many test rows.")


FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELD_TYPES = ("string", "integer", "number", "boolean", "list[string]")
_TYPE_ALIASES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                 "list": "list[string]", "list[str]": "list[string]"}


def _field_type(value: Any) -> Any:
    return _TYPE_ALIASES.get(value, value) if isinstance(value, str) else value


class InputFieldConfig(_Section):
    """One input field of a program built from the data: which column (or template) fills it.

    Example:
        >>> InputFieldConfig(template="{question} Options: {options}").type
        'string'
    """

    column: str | None = Field(
        default=None, description="The column that fills the field (default: the field's "
                                  "name). Not with `template`.")
    template: str | None = Field(
        default=None, description="Text composed from several columns, each named in braces: "
                                  "'{question} Options: {options}' (a list column is "
                                  "written as JSON). Not with `column`.")
    type: Literal["string", "integer", "number", "boolean", "list[string]"] = Field(
        default="string", description="The field's type (str, int, float, bool and list[str] "
                                      "are accepted too); a template is always a string.")
    description: str | None = Field(
        default=None, description="What the field holds, shown to the model in the prompt.")

    @field_validator("type", mode="before")
    @classmethod
    def _type_alias(cls, value: Any) -> Any:
        return _field_type(value)

    @model_validator(mode="after")
    def _column_or_template(self) -> InputFieldConfig:
        if self.column is not None and self.template is not None:
            raise ValueError("expected `column` or `template`, not both")
        if self.template is not None and self.type != "string":
            raise ValueError("a `template` makes a string field; drop `type`")
        return self


class OutputFieldConfig(_Section):
    """One output field of a program built from the data: its column and allowed answers.

    `labels` (a fixed set) or `choices` (a column with each row's allowed answers) make the
    field a `Literal`: the answer is one of the labels, grammar-constrained where the model
    supports it. With `choices` and no `labels`, the labels are every value the column holds
    in the data files (read once; saved in the run's config). Each row's own choices are
    also given to the model as an input field (named like the column) unless an input
    already uses that column.

    Example:
        >>> OutputFieldConfig(column="target", labels=["yes", "no"]).type
        'string'
    """

    column: str | None = Field(
        default=None, description="The column holding the expected answer (default: the "
                                  "field's name).")
    type: Literal["string", "integer", "number", "boolean", "list[string]"] = Field(
        default="string", description="The answer's type (str, int, float, bool and "
                                      "list[str] are accepted too).")
    description: str | None = Field(
        default=None, description="What the answer is, shown to the model in the prompt.")
    labels: list[str | int | float | bool] | None = Field(
        default=None, description="The allowed answers: the field becomes a Literal of "
                                  "these.")
    choices: str | None = Field(
        default=None, description="A column listing each row's allowed answers; without "
                                  "`labels`, the labels are all the values it holds (over "
                                  "200 of them, the answer stays free text).")

    @field_validator("type", mode="before")
    @classmethod
    def _type_alias(cls, value: Any) -> Any:
        return _field_type(value)

    @field_validator("labels")
    @classmethod
    def _some_labels(cls, value: list | None) -> list | None:
        if value is not None and not value:
            raise ValueError("expected at least one label")
        if value is not None and len(set(map(repr, value))) != len(value):
            raise ValueError("expected distinct labels")
        return value


def _field_specs(value: Any) -> Any:
    """`[a, b]` is `{a: {}, b: {}}`; a field without settings (`a:`) is `{}`."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("expected field names (strings) or a mapping of field settings")
        return {name: {} for name in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


class DataConfig(_Section):
    """Data files (local paths or URIs such as `s3://bucket/key`), JSONL or Parquet.

    The program's data classes come from Python (`input_model`, `output_model`, with field
    maps from a model field to the column that fills it; default: same names), or from the
    data's own description (`inputs`, `outputs`): then no Python module is needed and the
    program is built from them (see `program.kind`).

    Example:
        >>> DataConfig(train="train.jsonl", input_model="m:Q", output_model="m:A").id_field
        'id'
        >>> DataConfig(train="d.jsonl", inputs=["question"],
        ...            outputs={"answer": {"column": "target"}}).outputs["answer"].column
        'target'
    """

    train: str = Field(description="The training data: a JSONL or Parquet file (or folder), "
                                   "local or a URI.")
    validation: str | None = Field(
        default=None, description="Validation data (same format); without it, the search "
                                  "scores candidates on the training data (see "
                                  "training.validation_split).")
    test: str | None = Field(
        default=None, description="Test data, scored before and after the search.")
    format: Literal["jsonl", "parquet"] | None = Field(
        default=None, description="The files' format (default: from the file suffix).")
    input_model: str | None = Field(
        default=None, description="'module:Class', the DataModel of the program's inputs. "
                                  "Not with `inputs`.")
    output_model: str | None = Field(
        default=None, description="'module:Class', the DataModel of the expected outputs. "
                                  "Not with `outputs`.")
    input_fields: dict[str, str] | None = Field(
        default=None, description="With input_model: field -> column that fills it (default: "
                                  "same names).")
    output_fields: dict[str, str] | None = Field(
        default=None, description="With output_model: field -> column that fills it "
                                  "(default: same names).")
    inputs: dict[str, InputFieldConfig] | None = Field(
        default=None, description="The program's input fields, built from columns (a list "
                                  "of column names, or field -> settings).")
    outputs: dict[str, OutputFieldConfig] | None = Field(
        default=None, description="The program's output fields and the columns with their "
                                  "expected values (field -> settings).")
    id_field: str = Field(default="id", description="The column of unique row ids (rows "
                                                    "without it are numbered).")
    limit: SplitLimits | None = Field(
        default=None, description="At most this many rows per split (`limit: N` for all).")
    test_split: float = Field(
        default=0.0, ge=0.0, lt=1.0,
        description="Without a test file: hold out this fraction of the training rows (its "
                    "end, after `shuffle`) as test data.")
    shuffle: bool = Field(
        default=False, description="Shuffle the training rows (seeded by training.seed) "
                                   "before holding out test and validation rows.")

    @field_validator("input_model", "output_model")
    @classmethod
    def _class_path(cls, value: str | None) -> str | None:
        return check_import_path(value, "Class")

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _shorthand_fields(cls, value: Any) -> Any:
        return _field_specs(value)

    @field_validator("inputs", "outputs")
    @classmethod
    def _field_names(cls, value: dict | None) -> dict | None:
        if value is not None and not value:
            raise ValueError("expected at least one field")
        for name in value or {}:
            if not FIELD_NAME.match(name):
                raise ValueError(f"field name {name!r}: expected letters, digits and '_', "
                                 "not starting with a digit")
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

    @model_validator(mode="after")
    def _models_or_fields(self) -> DataConfig:
        described = self.inputs is not None or self.outputs is not None
        from_python = self.input_model is not None or self.output_model is not None
        if described and from_python:
            raise ValueError("expected `input_model`/`output_model` (Python classes) or "
                             "`inputs`/`outputs` (fields described here), not both")
        if described:
            missing = [k for k in ("inputs", "outputs") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"expected both `inputs` and `outputs` (missing: "
                                 f"{', '.join(missing)})")
            both = sorted(set(self.inputs) & set(self.outputs))
            if both:
                raise ValueError(f"field {both[0]!r} is both an input and an output; rename "
                                 "one (the column can stay: `column: ...`)")
            if self.input_fields or self.output_fields:
                raise ValueError("`input_fields`/`output_fields` go with input_model/"
                                 "output_model; with `inputs`/`outputs` give `column`")
        elif not (self.input_model and self.output_model):
            raise ValueError("expected `inputs` and `outputs` (fields described here), or "
                             "`input_model` and `output_model` ('module:Class')")
        if self.test_split and self.test is not None:
            raise ValueError("`test_split` holds out test rows when there is no `test` file")
        return self

    def described(self) -> bool:
        """Whether the program's fields are described here (no Python classes)."""
        return self.outputs is not None

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

    model: str = Field(description="The model id, as litellm names it ('openai/gpt-4o-mini', "
                                   "'ollama/llama3') or 'local/smollm2-135m'.")
    api_base: str | None = Field(default=None, description="The server's base URL (default: "
                                                           "the provider's).")
    api_key_env: str | None = Field(
        default=None, description="The environment variable holding the API key (never the "
                                  "key itself).")
    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature.")
    max_tokens: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        default="auto", description="At most this many tokens per answer ('auto': sized to "
                                    "each call's output schema; null: no limit).")
    timeout: float | None = Field(default=None, gt=0,
                                  description="Seconds before a call is abandoned (None: the "
                                              "client's default).")
    retries: int = Field(default=4, ge=0, description="Retries of a failed call (rate limits, "
                                                      "server errors, unparsable answers).")
    cache: bool = Field(default=True, description="Keep answers in the on-disk response "
                                                  "cache ($SYNARAY_CACHE_DIR).")
    max_concurrency: int = Field(default=8, ge=1,
                                 description="Calls in flight to this model at once.")
    structured_output: Literal["auto", "json_schema", "json_object", "grammar", "none"] = Field(
        default="auto", description="How answers are constrained to the output schema "
                                    "('auto': what the provider supports).")
    loop_stop: Literal["auto", "stream", "after"] = Field(
        default="auto", description="How a looping answer is caught: 'stream' (streamed, "
                                    "closed once its tail repeats), 'after' (checked once "
                                    "received) or 'auto' (stream for servers on this machine "
                                    "when max_tokens >= 128).")

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _max_tokens(cls, value: Any) -> Any:
        """One clear message instead of one per member of the union."""
        if value is None or value == "auto" or (
                isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("expected a positive integer, 'auto' (sized to the output schema) "
                         "or null")


class ComponentConfig(BaseModel):
    """A reward, metric or optimizer: its `name` plus constructor settings.

    The settings are checked against the constructor of what `name` names
    (`synaray.config.checks`), so they are free-form here.

    Example:
        >>> ComponentConfig(name="population_search", population_size=3).settings
        {'population_size': 3}
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="What to build: a registered name (exact_match, token_f1, "
                                  "population_search...) or 'module:function'.")

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CircuitBreakerConfig(_Section):
    """When a run stops because its LM calls keep failing (`synaray.lm.circuit_breaker`).

    Example:
        >>> CircuitBreakerConfig(window=50).max_failure_rate
        0.5
    """

    enabled: bool = Field(default=True, description="Stop a run whose LM calls keep failing.")
    first_calls: int = Field(default=20, ge=0, description="Stop when all of the run's first "
                                                           "this many LM calls failed.")
    window: int = Field(default=100, ge=0, description="Stop when more than `max_failure_rate` "
                                                       "of the last this many calls failed.")
    max_failure_rate: float = Field(default=0.5, gt=0, le=1,
                                    description="The failure share over `window` that stops "
                                                "the run.")

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

    epochs: int = Field(default=1, ge=1, description="Passes over the training data.")
    batch_size: int = Field(default=32, ge=1,
                            description="Training examples per generation (minibatch).")
    seed: int = Field(default=0, description="Seed of the search (and of data.shuffle and "
                                             "the bootstrap of the before/after gain).")
    validation_split: float = Field(
        default=0.0, ge=0.0, lt=1.0,
        description="Without validation data: hold out this fraction of the training rows "
                    "(their end) for validation.")
    compare_initial: bool = Field(
        default=True, description="Score the program as given on the validation and test "
                                  "data before the search, and report the gain per row "
                                  "(false by default in sweep trials).")
    preflight: bool | None = Field(
        default=None, description="Send each model one cheap request before the run (None: "
                                  "yes unless $SYNARAY_PREFLIGHT=0).")
    circuit_breaker: CircuitBreakerConfig = Field(
        default_factory=CircuitBreakerConfig,
        description="Stop the run when LM calls keep failing.")


class BudgetConfig(_Section):
    """Limits of the search (the first one reached stops it); see `synaray.optimizers.Budget`.

    Example:
        >>> BudgetConfig(lm_calls=2000).to_budget_kwargs()
        {'max_lm_calls': 2000}
    """

    generations: int | None = Field(default=None, ge=1,
                                    description="Stop after this many generations.")
    lm_calls: int | None = Field(default=None, ge=1,
                                 description="Stop after this many LM calls.")
    tokens: int | None = Field(default=None, ge=1, description="Stop after this many tokens.")
    cost: float | None = Field(default=None, gt=0,
                               description="Stop after this cost (USD, as litellm prices it).")
    wall_time_s: float | None = Field(default=None, gt=0,
                                      description="Stop after this many seconds.")
    target_reward: float | None = Field(
        default=None, description="Stop once the best validation reward reaches this.")

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

    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Requests per minute, shared by every evaluator.")
    tokens_per_minute: float | None = Field(
        default=None, gt=0, description="Tokens per minute, shared by every evaluator.")


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

    type: Literal["local", "ray"] = Field(
        default="local", description="'local' (asyncio, this process) or 'ray' (actors).")
    address: str | None = Field(
        default=None, description="ray: None starts a cluster on this machine; 'auto' or "
                                  "'host:port' joins one.")
    num_evaluators: int = Field(default=2, ge=1, description="ray: evaluator actors.")
    max_concurrency: int = Field(default=8, ge=1, description="LM calls in flight (per "
                                                              "evaluator under ray).")
    max_inflight: int = Field(default=2, ge=1,
                              description="ray: chunks queued per evaluator.")
    chunk_size: int = Field(default=32, ge=1,
                            description="ray: examples per evaluation request.")
    rate_limits: dict[str, RateLimitConfig] | None = Field(
        default=None, description="ray: model id -> its rate limits.")
    env_vars: list[str] | None = Field(
        default=None, description="ray: names of environment variables whose values the "
                                  "actors get through Ray's runtime env (Ray logs them: "
                                  "prefer the cluster's own environment for keys).")


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

    run_name: str | None = Field(
        default=None, description="The run's name, its folder in `storage` (default: the "
                                  "program's name, the time and a random suffix).")
    storage: str | None = Field(
        default=None, description="Where runs are kept: a folder or a URI such as "
                                  "s3://bucket/runs (default: ./synaray_runs).")
    task: TaskConfig | None = Field(
        default=None, description="A built-in task (its program, data and reward). Not "
                                  "with `program`/`data`.")
    program: ProgramConfig | None = Field(
        default=None, description="Where the program comes from (optional when "
                                  "data.inputs/data.outputs describe it).")
    data: DataConfig | None = Field(default=None, description="The data files and fields.")
    model: ModelConfig | None = Field(
        default=None, description="The language model of the program (`model: NAME` is "
                                  "short for `{model: NAME}`).")
    reward: ComponentConfig | None = Field(
        default=None, description="What the search maximizes (default: the task's, or "
                                  "exact match on data.outputs).")
    metrics: list[ComponentConfig] = Field(
        default_factory=list, description="Metrics reported beside the reward.")
    optimizer: ComponentConfig = Field(description="The search: random_few_shot, "
                                                   "population_search, omega... with settings.")
    training: TrainingConfig = Field(default_factory=TrainingConfig,
                                     description="Epochs, batch size and seed.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig,
                                 description="Limits that stop the search.")
    engine: EngineConfig = Field(default_factory=EngineConfig,
                                 description="Where evaluations run.")
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
        described = self.data is not None and self.data.described()
        if self.task is None and self.data is None:
            raise ValueError("expected `task`, or `data` (with `inputs`/`outputs`, or with "
                             "`program` and input_model/output_model)")
        if self.task is None and self.program is None and not described:
            raise ValueError("expected `task`, or `program` and `data` (missing: program; "
                             "or describe the fields with data.inputs and data.outputs)")
        if self.program is not None and self.program.from_data() and not described:
            raise ValueError("program: expected `builder` or `path`, or data.inputs and "
                             "data.outputs to build the program from")
        if self.task is None and self.reward is None and not described:
            raise ValueError("expected a `reward` (a built-in task has a default one, and so "
                             "does a program built from data.outputs: exact_match)")
        return self

    def uses_ray(self) -> bool:
        return self.engine.type == "ray"
