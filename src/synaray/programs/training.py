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
        self.stop_training = False

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

    async def fit(self, x: Any = None, y: Any = None, epochs: int = 1, batch_size: int = 32,
                  validation_split: float = 0.0, validation_data: Any = None,
                  callbacks: list | None = None, engine: Any = "local", verbose: bool = True,
                  resume: bool = False, preflight: bool | None = None,
                  circuit_breaker: Any = None, stop_conditions: list | None = None) -> Any:
        """Optimize the program's trainable state against the compiled reward.

        Args:
            x, y: training inputs and expected outputs (lists/arrays of data models), or a
                labelled `Dataset` as `x`.
            epochs: passes over the training data; each minibatch is one generation.
            batch_size: examples per minibatch (every population member is scored on it).
            validation_split: fraction of the training data (taken from the end) held out.
            validation_data: `(x_val, y_val)` or a Dataset; the best candidate on it is kept.
            callbacks: `synaray.callbacks` instances (History and a progress bar are added).
            engine: "local" (default), "ray", or an Engine instance.
            verbose: show a progress bar.
            resume: continue from the engine's last checkpoint (RayEngine with storage).
            preflight: first send each model one cheap request and stop with a
                `PreflightError` if one cannot work (`synaray.lm.preflight`); None: on
                unless the environment variable `SYNARAY_PREFLIGHT` is 0.
            circuit_breaker: stop the fit with `LMFailuresError` when LM calls keep
                failing (`synaray.lm.circuit_breaker`): None/True (all of the first 20
                fail, or more than half of the last 100), False (off), a dict of settings
                (`first_calls`, `window`, `max_failure_rate`) or a `CircuitBreaker`.
            stop_conditions: `synaray.trainers.stop_conditions` (`EarlyStop`,
                `TargetReward`, `BudgetLimit`) or their config dicts, evaluated where the
                search runs (in the optimizer actor on RayEngine).

        Returns:
            A `History` whose `history` dict holds the per-epoch logs.
        """
        from synaray.trainers import fit

        return await fit(self, x, y, epochs=epochs, batch_size=batch_size,
                         validation_split=validation_split, validation_data=validation_data,
                         callbacks=callbacks, engine=engine, verbose=verbose, resume=resume,
                         preflight=preflight, circuit_breaker=circuit_breaker,
                         stop_conditions=stop_conditions)

    async def evaluate(self, x: Any = None, y: Any = None, batch_size: int = 32,
                       engine: Any = "local", verbose: bool = True,
                       return_predictions: bool = False) -> dict:
        """Reward (mean) and metrics of the current program on (x, y), plus LM usage.

        Args:
            batch_size: LM calls in flight when `engine` is named ("local", "ray"); an
                engine object keeps its own `max_concurrency`.
            engine: "local", "ray" or an `Engine`.
            verbose: show progress (samples, LM calls, rate, ETA) while it runs.
            return_predictions: also return every `EvalResult` under "predictions".
        """
        from synaray.trainers import evaluate

        return await evaluate(self, x, y, batch_size=batch_size, engine=engine,
                              verbose=verbose, return_predictions=return_predictions)

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
