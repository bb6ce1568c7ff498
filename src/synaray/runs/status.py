"""What `status.json` holds: the one builder of a run's live status, on both engines.

`build_status` is called by the checkpointer (`synaray.runs.checkpoint`) after every step,
whether the optimizer lives in this process (LocalEngine) or in the Ray optimizer actor.
A run's `state` is one of `STATES`:

- "running": written while the search goes on (a reader calls a running run whose file is
  old "stale": its process may have died, see `synaray.observability.status.RunStatus`);
- "finished": the optimizer stopped on its own (epochs done, a budget, a target reward, a
  stop condition such as EarlyStopping's);
- "failed": fit raised; `error` holds the exception's type and message;
- "stopped": a callback stopped the fit (`program.stop_training`), or
  the user did (Ctrl-C); `error` says which.

`ended_state(exc)` maps an exception that ended a fit to ("failed" | "stopped", reason).
`status_from_state` derives a status from a saved optimizer state alone (a folder without
`status.json`).

Example:
    >>> ended_state(KeyboardInterrupt())
    ('stopped', 'interrupted (KeyboardInterrupt: Ctrl-C or a signal)')
    >>> ended_state(ValueError("bad"))
    ('failed', 'ValueError: bad')
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from synaray.utils.progress import best_so_far

__all__ = ["FAILED", "FINISHED", "RUNNING", "STATES", "STOPPED", "STOPPED_BY_CALLBACK",
           "build_status", "ended_state", "status_from_state"]

RUNNING, FINISHED, FAILED, STOPPED = "running", "finished", "failed", "stopped"
STATES = (RUNNING, FINISHED, FAILED, STOPPED)
STOPPED_BY_CALLBACK = "stopped by a callback (program.stop_training)"


def ended_state(exc: BaseException) -> tuple[str, str]:
    """How a fit that raised `exc` ended: ("stopped", why) for Ctrl-C (KeyboardInterrupt,
    or the cancellation `asyncio.run` turns it into), else ("failed", "Type: message")."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return STOPPED, f"interrupted ({type(exc).__name__}: Ctrl-C or a signal)"
    return FAILED, f"{type(exc).__name__}: {exc}"


def build_status(optimizer: Any, run_name: str, step: int, started: float | None = None,
                 state: str = RUNNING, error: str | None = None) -> dict[str, Any]:
    """The content of `status.json` for an optimizer (a local one, or inside the actor).

    `state` is what the caller knows ("running", or "failed"/"stopped" with `error`); an
    optimizer that stopped on its own (`stop_reason` set) is "finished" whatever the caller
    says.

    Raises:
        ValueError: a `state` that is not one of `STATES`.
    """
    if state not in STATES:
        raise ValueError(f"Invalid run state {state!r}; expected one of {', '.join(STATES)}.")
    spent = optimizer.spent
    history = list(optimizer.history)
    best, source = best_so_far(optimizer.best_val_reward, history)
    last = history[-1] if history else {}
    now = time.time()
    finished = bool(optimizer.stop_reason)
    return {
        "run_name": run_name, "step": step,
        "state": FINISHED if finished else state, "error": None if finished else error,
        "epoch": optimizer.epoch, "epochs": optimizer.epochs, "phase": optimizer.phase,
        "generation": optimizer.generation,
        "total_generations": optimizer.epochs * optimizer.steps_per_epoch,
        "steps_per_epoch": optimizer.steps_per_epoch,
        "best_val_reward": optimizer.best_val_reward, "best_id": optimizer.best_id,
        "best_reward": best, "best_reward_source": source,
        "last_reward": last.get("reward"), "population_reward": last.get("population_reward"),
        "population_size": len(optimizer.population),
        "candidates": len(getattr(optimizer, "candidates", {}) or {}),
        "lm_calls": spent.lm_calls, "lm_failures": spent.lm_failures, "tokens": spent.tokens,
        "cost": spent.cost, "time_s": spent.time_s, "stop_reason": optimizer.stop_reason,
        "started": started if started is not None else now, "updated": now,
    }


def status_from_state(state: dict[str, Any], run_name: str,
                      updated: float | None = None) -> dict[str, Any]:
    """A status derived from a saved optimizer state (for runs without `status.json`)."""
    history = state.get("history") or []
    spent = state.get("spent") or {}
    best_val = None
    if history and any("val_reward" in h for h in history):
        best_val = max((h["val_reward"] for h in history if h.get("val_reward") is not None),
                       default=None)
    best, source = best_so_far(best_val, history)
    last = history[-1] if history else {}
    total = None
    if state.get("order") is not None and state.get("batch_size"):
        n = len(state["order"]) or 0
        total = state["epochs"] * -(-n // state["batch_size"]) if n else None
    return {"run_name": run_name, "step": None,
            "state": FINISHED if state.get("stop_reason") else STOPPED,
            "epoch": state.get("epoch"), "epochs": state.get("epochs"),
            "phase": state.get("phase"), "generation": state.get("generation", 0),
            "total_generations": total, "best_val_reward": best_val,
            "best_id": state.get("best_id"), "best_reward": best, "best_reward_source": source,
            "last_reward": last.get("reward"), "population_reward": last.get("population_reward"),
            "lm_calls": spent.get("lm_calls", 0), "lm_failures": spent.get("lm_failures", 0),
            "tokens": spent.get("tokens", 0), "cost": spent.get("cost", 0.0),
            "time_s": spent.get("time_s", 0.0), "stop_reason": state.get("stop_reason"),
            "updated": updated}
