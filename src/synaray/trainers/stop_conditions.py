"""Stop conditions: what ends a search besides its epochs, as plain serialisable data.

The search loop (`synaray.trainers.search_loop`) evaluates them where it runs: in this
process on LocalEngine, inside the optimizer actor on RayEngine, so a run whose driver is
gone still stops where it would have. They replace callbacks that steer the search:
`EarlyStopping` becomes an `EarlyStop`, a budget a `BudgetLimit`, a target reward a
`TargetReward`. A condition's state (e.g. epochs without improvement) is rebuilt by
replaying the run's stored epoch events after a restart (`replay`), never checkpointed.

Example:
    >>> cond = EarlyStop(monitor="val_reward", patience=0)
    >>> cond.check("epoch_end", {"val_reward": 0.5}, None) is None
    True
    >>> cond.check("epoch_end", {"val_reward": 0.5}, None)
    'early stopping: val_reward did not improve for 1 epoch(s)'
    >>> stop_condition_from(cond.get_config()).patience
    0
"""

from __future__ import annotations

from typing import Any

from synaray.errors import ConfigError
from synaray.optimizers.budget import Budget
from synaray.utils.monitor import Monitor

__all__ = ["BudgetLimit", "EarlyStop", "StopCondition", "TargetReward",
           "conditions_from_config", "conditions_to_config", "stop_condition_from"]


class StopCondition:
    """Base: `check(kind, logs, optimizer)` returns a stop reason, or None to go on.

    `kind` is "batch_end" (after each training generation, `logs` its history row) or
    "epoch_end" (`logs` the epoch logs, validation metrics included).
    """

    type_name = "condition"

    def check(self, kind: str, logs: dict, optimizer: Any) -> str | None:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": self.type_name}


class EarlyStop(StopCondition):
    """Stop after `patience` epochs without improvement of `monitor` (as `EarlyStopping`).

    Example:
        >>> EarlyStop("val_reward", patience=2).patience
        2
    """

    type_name = "early_stop"

    def __init__(self, monitor: str = "val_reward", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto") -> None:
        if not isinstance(patience, int) or patience < 0:
            raise ConfigError(f"Invalid value for argument `patience`. Received: {patience!r}. "
                              "Expected an integer >= 0.")
        self.mode = mode
        self.monitor = Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.wait = 0

    def check(self, kind: str, logs: dict, optimizer: Any) -> str | None:
        if kind != "epoch_end":
            return None
        if self.monitor.improved(logs):
            self.wait = 0
            return None
        self.wait += 1
        if self.wait > self.patience:
            return (f"early stopping: {self.monitor.monitor} did not improve for "
                    f"{self.wait} epoch(s)")
        return None

    def get_config(self) -> dict:
        return {"type": self.type_name, "monitor": self.monitor.monitor,
                "patience": self.patience, "min_delta": self.monitor.min_delta,
                "mode": self.mode}


class TargetReward(StopCondition):
    """Stop once `monitor` reaches `target` ("val_reward" at epoch ends; "reward", the
    best minibatch reward of a generation, after each generation).

    Example:
        >>> TargetReward(0.9).check("epoch_end", {"val_reward": 0.95}, None)
        'target reached: val_reward 0.95 >= 0.9'
    """

    type_name = "target_reward"

    def __init__(self, target: float, monitor: str = "val_reward") -> None:
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise ConfigError(f"Invalid value for argument `target`. Received: {target!r}. "
                              "Expected a number.")
        self.target = float(target)
        self.monitor = monitor

    def check(self, kind: str, logs: dict, optimizer: Any) -> str | None:
        value = logs.get(self.monitor)
        if value is None or (self.monitor.startswith("val_") and kind != "epoch_end"):
            return None
        if float(value) >= self.target:
            return f"target reached: {self.monitor} {float(value):g} >= {self.target:g}"
        return None

    def get_config(self) -> dict:
        return {"type": self.type_name, "target": self.target, "monitor": self.monitor}


class BudgetLimit(StopCondition):
    """Stop once the search spent a `Budget` (LM calls, tokens, cost, time, generations),
    on top of the optimizer's own budget.

    Example:
        >>> BudgetLimit({"max_lm_calls": 100}).budget.max_lm_calls
        100
    """

    type_name = "budget"

    def __init__(self, budget: Budget | dict) -> None:
        self.budget = budget if isinstance(budget, Budget) else Budget(**budget)

    def check(self, kind: str, logs: dict, optimizer: Any) -> str | None:
        if optimizer is None:
            return None
        return optimizer.spent.stop_reason(self.budget, optimizer.best_val_reward)

    def get_config(self) -> dict:
        return {"type": self.type_name,
                "budget": self.budget.model_dump(exclude_defaults=True)}


_TYPES: dict[str, type[StopCondition]] = {c.type_name: c for c in
                                          (EarlyStop, TargetReward, BudgetLimit)}


def stop_condition_from(config: dict | StopCondition) -> StopCondition:
    """A condition from its `get_config()` dict (or the condition itself)."""
    if isinstance(config, StopCondition):
        return config
    if not isinstance(config, dict) or config.get("type") not in _TYPES:
        raise ConfigError(f"Invalid stop condition {config!r}: expected a dict with "
                          f"'type' one of {sorted(_TYPES)}.")
    settings = {k: v for k, v in config.items() if k != "type"}
    return _TYPES[config["type"]](**settings)


def conditions_to_config(conditions: list[StopCondition]) -> list[dict]:
    return [c.get_config() for c in conditions]


def conditions_from_config(configs: list[dict] | None) -> list[StopCondition]:
    return [stop_condition_from(c) for c in configs or []]
