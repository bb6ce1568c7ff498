"""A run's live status: what `status.json` holds, how to read it, how to print it.

The optimizer actor (RayEngine) writes `status.json` after every step with
`build_status(...)`; `read_status` reads it back (or derives it from
`optimizer_state.json` when there is no status file, e.g. a LocalEngine `BackupAndRestore`
folder) and `RunStatus` tells whether the run is running, finished, failed or stale, with
the best reward so far, LM calls and their rate, failures and an ETA.

Example:
    >>> status = RunStatus({"generation": 2, "total_generations": 4, "time_s": 10.0,
    ...                     "lm_calls": 50, "updated": 100.0, "best_val_reward": 0.5},
    ...                    now=101.0)
    >>> status.state, status.eta_s
    ('running', 10.0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from synaray.utils.progress import best_so_far, format_best, format_duration

__all__ = ["RunStatus", "build_status", "format_status", "read_status", "status_from_state"]

STATUS_FILE = "status.json"
DEFAULT_STALE_AFTER_S = 600.0


def build_status(optimizer: Any, run_name: str, step: int, started: float | None = None,
                 state: str = "running", error: str | None = None) -> dict[str, Any]:
    """The content of `status.json` for an optimizer (a local one, or inside the actor)."""
    spent = optimizer.spent
    history = list(optimizer.history)
    best, source = best_so_far(optimizer.best_val_reward, history)
    last = history[-1] if history else {}
    now = time.time()
    return {
        "run_name": run_name, "step": step,
        "state": "finished" if optimizer.stop_reason else state, "error": error,
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
            "state": "finished" if state.get("stop_reason") else "stopped",
            "epoch": state.get("epoch"), "epochs": state.get("epochs"),
            "phase": state.get("phase"), "generation": state.get("generation", 0),
            "total_generations": total, "best_val_reward": best_val,
            "best_id": state.get("best_id"), "best_reward": best, "best_reward_source": source,
            "last_reward": last.get("reward"), "population_reward": last.get("population_reward"),
            "lm_calls": spent.get("lm_calls", 0), "lm_failures": spent.get("lm_failures", 0),
            "tokens": spent.get("tokens", 0), "cost": spent.get("cost", 0.0),
            "time_s": spent.get("time_s", 0.0), "stop_reason": state.get("stop_reason"),
            "updated": updated}


@dataclass
class RunStatus:
    """A status snapshot plus what follows from it (state, rates, ETA).

    Args:
        data: the content of `status.json` (see `build_status`).
        now: the time to judge staleness against (default: now).
        stale_after_s: a running run not updated for longer than this, and than 5 of its
            average steps, is reported "stale" (its driver or optimizer actor may be dead).
        location: where the run lives (shown by `format_status`).
    """

    data: dict[str, Any]
    now: float = field(default_factory=time.time)
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    location: str = ""

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    @property
    def age_s(self) -> float | None:
        updated = self.data.get("updated")
        return None if updated is None else max(0.0, self.now - float(updated))

    @property
    def state(self) -> str:
        """"finished", "failed", "stale", "running" or "stopped" (no live status file)."""
        if self.data.get("stop_reason") or self.data.get("state") == "finished":
            return "finished"
        if self.data.get("state") in ("failed", "stopped"):
            return self.data["state"]
        age = self.age_s
        step_s = self.get("time_s", 0.0) / max(1, self.get("step", 0) or 1)
        if age is not None and age > max(self.stale_after_s, 5 * step_s):
            return "stale"
        return "running"

    @property
    def best(self) -> tuple[float | None, str]:
        if self.data.get("best_val_reward") is not None:
            return float(self.data["best_val_reward"]), "val"
        if self.data.get("best_reward") is not None:
            return float(self.data["best_reward"]), self.get("best_reward_source", "train")
        return None, ""

    @property
    def calls_per_s(self) -> float | None:
        elapsed = self.get("time_s", 0.0)
        return self.get("lm_calls", 0) / elapsed if elapsed > 0 else None

    @property
    def generations_per_s(self) -> float | None:
        elapsed = self.get("time_s", 0.0)
        return self.get("generation", 0) / elapsed if elapsed > 0 else None

    @property
    def eta_s(self) -> float | None:
        total, done = self.data.get("total_generations"), self.get("generation", 0)
        rate = self.generations_per_s
        if self.state == "finished":
            return 0.0
        if not total or not rate or done <= 0:
            return None
        return max(0.0, (total - done) / rate)

    def one_line(self) -> str:
        """The fields of the fit progress bar, on one line."""
        total = self.data.get("total_generations")
        done = self.get("generation", 0)
        calls_rate = self.calls_per_s
        parts = [f"{self.get('run_name', '?')} [{self.state}]",
                 f"generation {done}/{total}" if total else f"generation {done}",
                 f"best {format_best(*self.best)}",
                 f"lm_calls={self.get('lm_calls', 0)}"
                 + (f" ({calls_rate:.1f}/s)" if calls_rate else ""),
                 f"failures={self.get('lm_failures', 0)}"]
        eta = self.eta_s
        if eta is not None and self.state == "running":
            parts.append(f"eta {format_duration(eta)}")
        return "  ".join(parts)

    def __repr__(self) -> str:
        return f"<RunStatus {self.one_line()}>"


def format_status(status: RunStatus) -> str:
    """The multi-line text `synaray status` prints."""
    d = status.data
    state = status.state
    why = {"finished": d.get("stop_reason") or "", "failed": d.get("error") or "",
           "stale": f"no update for {format_duration(status.age_s or 0)}: the driver or the "
                    "optimizer actor may have died (resume with resume=True)",
           "stopped": d.get("error") or "no live status file: derived from the saved "
                      "optimizer state"}
    total = d.get("total_generations")
    gen_rate, calls_rate, eta = status.generations_per_s, status.calls_per_s, status.eta_s
    best, source = status.best
    lines = [
        f"run          {d.get('run_name', '?')}" + (f"  ({status.location})"
                                                   if status.location else ""),
        f"state        {state}" + (f": {why[state]}" if why.get(state) else ""),
        f"generation   {status.get('generation', 0)}" + (f"/{total}" if total else "")
        + (f"   epoch {min(status.get('epoch', 0) + 1, status.get('epochs', 1))}/"
           f"{status.get('epochs', '?')}" if d.get("epochs") else "")
        + (f"   phase {d['phase']}" if d.get("phase") and state == "running" else ""),
        f"best reward  {format_best(best, source)}"
        + ("  (validation)" if source == "val" else "")
        + (f"   last minibatch {d['last_reward']:.3f}" if d.get("last_reward") is not None
           else "")
        + (f"   population {d['population_reward']:.3f}"
           if d.get("population_reward") is not None else ""),
        f"LM calls     {status.get('lm_calls', 0)}"
        + (f"   {calls_rate:.2f} calls/s" if calls_rate else "")
        + f"   failures {status.get('lm_failures', 0)}"
        + f"   tokens {status.get('tokens', 0)}   cost ${status.get('cost', 0.0):.4f}",
        f"time         elapsed {format_duration(status.get('time_s', 0.0))}"
        + (f"   {gen_rate * 60:.2f} generations/min" if gen_rate else "")
        + (f"   ETA {format_duration(eta)}" if eta is not None and state == "running"
           else ""),
    ]
    if status.age_s is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["updated"]))
        lines.append(f"updated      {stamp} ({format_duration(status.age_s)} ago)")
    return "\n".join(lines)


def read_status(run: str, storage: str | None = None,
                stale_after_s: float = DEFAULT_STALE_AFTER_S) -> RunStatus:
    """The status of a run in run storage (see `synaray.observability.run_files.open_run`).

    Raises:
        CheckpointError: no such run, or its files cannot be read.
    """
    from synaray.observability.run_files import display_location, open_run

    store = open_run(run, storage)
    if store.exists(STATUS_FILE):
        data = store.read_json(STATUS_FILE)
    else:
        saved = store.read_json("optimizer_state.json")
        mtime = store.fs.get_file_info(store._path("optimizer_state.json")).mtime
        data = status_from_state(saved.get("optimizer", saved), store.run_name,
                                 mtime.timestamp() if mtime else None)
    return RunStatus(data, stale_after_s=stale_after_s, location=display_location(store))
