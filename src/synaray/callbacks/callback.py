"""`Callback` and `CallbackList`: hooks around fit, with Keras/Synalinks names."""

from __future__ import annotations

from typing import Any

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Observes a fit. Override the hooks you need; `self.program` and `self.optimizer` are set.

    Hooks: `on_train_begin(logs)` (logs: the fit's settings: engine, batch_size, epochs...),
    `on_epoch_begin(epoch, logs)`, `on_batch_end(step, logs)` (after each generation),
    `on_progress(logs)` (samples and LM calls so far), `on_results(results)` (the finished
    results themselves, LocalEngine only), `on_epoch_end(epoch, logs)`, `on_train_end(logs)`,
    and `on_train_error(error)` when the fit raises instead (the error is then re-raised).
    Errors raised in a hook propagate: a broken callback stops the fit rather than being
    ignored. On RayEngine the hooks run on the driver, fed by the optimizer actor's events;
    callbacks that steer the search give a `stop_condition()` evaluated where it runs.

    Example:
        >>> class PrintReward(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs.get("val_reward"))
    """

    def __init__(self) -> None:
        self.program: Any = None
        self.optimizer: Any = None

    def set_context(self, program: Any, optimizer: Any) -> None:
        self.program = program
        self.optimizer = optimizer

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, step: int, logs: dict | None = None) -> None: ...
    def on_results(self, results: list) -> None:
        """Finished `EvalResult`s of the current generation, as the engine reports them."""
    def on_progress(self, logs: dict | None = None) -> None:
        """Counts so far, while a generation runs: `samples`, `lm_calls`, `failures`
        (results are not sent to the driver on RayEngine; these counts are)."""
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_train_error(self, error: BaseException) -> None: ...

    def restore(self) -> dict | None:
        """Return a saved optimizer state to resume from (BackupAndRestore), or None."""
        return None

    def stop_condition(self) -> Any:
        """A `synaray.trainers.stop_conditions.StopCondition` that this callback's steering
        amounts to (evaluated where the search runs, e.g. in the optimizer actor), or None."""
        return None

    def get_config(self) -> dict:
        return {}


class CallbackList:
    """Calls each callback's hook in order."""

    def __init__(self, callbacks: list[Callback], program: Any, optimizer: Any) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_context(program, optimizer)

    def __getattr__(self, hook: str) -> Any:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any, **kwargs: Any) -> None:
            for callback in self.callbacks:
                getattr(callback, hook)(*args, **kwargs)

        return call

    def set_optimizer(self, optimizer: Any) -> None:
        """The optimizer the fit runs (a local one, or a proxy of a remote one)."""
        for callback in self.callbacks:
            callback.optimizer = optimizer

    def restore(self) -> dict | None:
        for callback in self.callbacks:
            state = callback.restore()
            if state is not None:
                return state
        return None
