"""`compile` and the training entry points of `Program` (fit/evaluate live in trainers/)."""

from __future__ import annotations

import importlib
from typing import Any

from synaray.errors import ConfigError
from synaray.saving import deserialize_object, serialize_object

__all__ = ["ProgramTrainingMixin"]


def _get(package: str, identifier: Any) -> Any:
    """Resolve an identifier through `synaray.<package>.get` (rewards, metrics, optimizers)."""
    return importlib.import_module(f"synaray.{package}").get(identifier)


class ProgramTrainingMixin:
    """Adds `compile`, `reward`, `optimizer`, `metrics` and the fit/evaluate entry points."""

    def _init_training(self) -> None:
        self._reward: Any = None
        self._optimizer: Any = None
        self._metrics: list[Any] = []
        self.compiled = False

    def compile(self, reward: Any = None, optimizer: Any = None,
                metrics: list[Any] | None = None) -> None:
        """Set the reward to maximise, the optimizer that searches, and metrics to report.

        Args:
            reward: a Reward instance, a string id (`"exact_match"`, `"cosine_similarity"`,
                `"token_f1"`), a config dict or a function `(y_true, y_pred) -> float`.
            optimizer: an optimizer instance or string id (`"random_few_shot"`, ...).
            metrics: a list of metrics (instances, string ids or functions).

        Raises:
            ConfigError: an identifier that names no known reward, metric or optimizer.
        """
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise ConfigError(f"Invalid value for argument `metrics`. Received: {metrics!r}. "
                              "Expected a list of metrics.")
        self._reward = _get("rewards", reward) if reward is not None else None
        self._optimizer = _get("optimizers", optimizer) if optimizer is not None else None
        self._metrics = [_get("metrics", m) for m in (metrics or [])]
        self.compiled = True

    @property
    def reward(self) -> Any:
        return self._reward

    @property
    def optimizer(self) -> Any:
        return self._optimizer

    @property
    def metrics(self) -> list[Any]:
        return list(self._metrics)

    def get_compile_config(self) -> dict | None:
        if not self.compiled:
            return None
        return {"reward": serialize_object(self._reward),
                "optimizer": serialize_object(self._optimizer),
                "metrics": [serialize_object(m) for m in self._metrics]}

    def compile_from_config(self, config: dict, custom_objects: dict | None = None) -> None:
        self.compile(
            reward=deserialize_object(config.get("reward"), custom_objects),
            optimizer=deserialize_object(config.get("optimizer"), custom_objects),
            metrics=[deserialize_object(m, custom_objects) for m in config.get("metrics", [])],
        )
