"""Following a search's event stream on the driver: callbacks and an optimizer mirror.

`CallbackEvents` turns the events of a `SearchLoop` (in this process, or streamed from the
optimizer actor) into callback calls, in order, and puts the best program state into the
program at each epoch end and at the end, as a fit always did. `OptimizerView` is what
callbacks see as `self.optimizer` when the optimizer lives elsewhere: a mirror updated from
each event's `view`, with no remote call behind any attribute.

Example:
    >>> view = OptimizerView()
    >>> view.apply({"kind": "batch_end", "logs": {"reward": 0.5}, "view": None})
    >>> view.history
    [{'reward': 0.5}]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synaray.errors import EngineError
from synaray.optimizers.budget import BudgetSpent
from synaray.optimizers.protocol import Candidate

__all__ = ["CallbackEvents", "OptimizerView", "SearchFailed"]


class SearchFailed(EngineError):
    """The search raised where it ran (e.g. the optimizer actor); the message says what."""


class OptimizerView:
    """Driver-side mirror of an optimizer that runs elsewhere (fed by events).

    Attributes read by callbacks and the trainer: `epoch`, `epochs`, `phase`, `generation`,
    `stop_reason`, `best_id`, `best_val_reward`, `history`, `steps_per_epoch`,
    `population`, `spent`, `best()`, `finished`, and `status_snapshot` (the last view).
    """

    def __init__(self, view: dict | None = None,
                 state_dict: Callable[[], dict] | None = None) -> None:
        self.history: list[dict] = []
        self.status_snapshot: dict = {}
        self._state_dict = state_dict
        self.epoch = self.epochs = self.generation = self.steps_per_epoch = 0
        self.phase = "train"
        self.stop_reason: str | None = None
        self.best_id: str | None = None
        self.best_val_reward: float | None = None
        self.population: list[str] = []
        self.spent = BudgetSpent()
        self._best: Candidate | None = None
        if view:
            self._apply_view(view)

    def _apply_view(self, view: dict) -> None:
        self.status_snapshot = {**self.status_snapshot, **view}  # keeps e.g. "restored"
        for key in ("epoch", "epochs", "phase", "generation", "stop_reason", "best_id",
                    "best_val_reward", "steps_per_epoch", "population"):
            setattr(self, key, view[key])
        self.spent = BudgetSpent(**view["spent"])
        self._best = Candidate.from_dict(view["best"])

    def apply(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "train_begin":
            self.history = []
        if kind == "batch_end":
            self.history.append(dict(event.get("logs") or {}))
        if event.get("view"):
            self._apply_view(event["view"])
        if kind == "epoch_end" and self.history:
            self.history[-1]["val_reward"] = self.best_val_reward

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    def best(self) -> Candidate:
        if self._best is None:
            raise EngineError("The search has not reported its best candidate yet.")
        return self._best

    def state_dict(self) -> dict:
        """The optimizer's full state, read where the run keeps it (BackupAndRestore)."""
        if self._state_dict is None:
            raise EngineError("This optimizer's state lives with its run; it is not "
                              "available here.")
        return self._state_dict()

    def __repr__(self) -> str:
        return (f"<OptimizerView epoch={self.epoch}/{self.epochs} "
                f"generation={self.generation} best={self.best_val_reward}>")


class CallbackEvents:
    """Calls the fit's callbacks for each event of a search, in order.

    Args:
        program: the program being fit (gets the best state at epoch ends and the end).
        callbacks: a `CallbackList`.
        view: an `OptimizerView` to update (when the optimizer runs elsewhere), or None.
        request_stop: called once when a callback sets `program.stop_training`.
    """

    def __init__(self, program: Any, callbacks: Any, view: OptimizerView | None = None,
                 request_stop: Callable[[], Any] | None = None) -> None:
        self.program = program
        self.callbacks = callbacks
        self.view = view
        self.request_stop = request_stop
        self.ended: dict | None = None
        self._stop_sent = False
        self.progress = {"samples": 0, "lm_calls": 0}

    def __call__(self, event: dict) -> None:
        kind = event["kind"]
        if self.view is not None:
            self.view.apply(event)
        logs = event.get("logs") or {}
        cbs = self.callbacks
        if kind == "train_begin":
            cbs.on_train_begin(logs)
        elif kind == "epoch_begin":
            cbs.on_epoch_begin(event["epoch"])
        elif kind == "progress":
            if event.get("results") is not None:
                cbs.on_results(event["results"])
            cbs.on_progress(logs)
        elif kind == "batch_end":
            cbs.on_batch_end(event["generation"], dict(logs))
        elif kind == "epoch_end":
            self._set_best(event)
            cbs.on_epoch_end(event["epoch"], dict(logs))
        elif kind == "train_end":
            self._set_best(event)
            self.ended = event
            cbs.on_train_end({"stop_reason": logs.get("stop_reason")})
        elif kind == "train_error":
            self.ended = event
        if (self.request_stop is not None and not self._stop_sent
                and getattr(self.program, "stop_training", False)):
            self._stop_sent = True
            self.request_stop()

    def _set_best(self, event: dict) -> None:
        view = event.get("view")
        if view and view.get("best"):
            self.program.set_state(view["best"]["state"])

    def raise_if_failed(self) -> None:
        """Raise what the search raised where it ran: the same `synaray.errors` class when
        it is one (e.g. `LMFailuresError` from the circuit breaker), else `SearchFailed`."""
        if self.ended is None or self.ended["kind"] != "train_error":
            return
        from synaray import errors

        logs = self.ended["logs"]
        cls = getattr(errors, str(logs.get("error_type")), None)
        text = str(logs.get("error") or "")
        if isinstance(cls, type) and issubclass(cls, errors.SynarayError):
            raise cls(text.split(": ", 1)[-1])
        raise SearchFailed(f"The search failed: {text}")
