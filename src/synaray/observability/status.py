"""Reading a run's live status: `read_status`, `RunStatus`, `format_status`.

The run layer writes `status.json` (`synaray.runs.status.build_status`, through the one
checkpointer) after every step, on either engine. `read_status` reads it back (or derives it
from `optimizer_state.json` when there is no status file) and `RunStatus` tells whether the
run is running, finished, failed, stopped or stale (running but silent for long: its process
may have died), with the best reward so far, LM calls and their rate, failures and an ETA.

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

from synaray.runs.status import FAILED, FINISHED, RUNNING, STOPPED
from synaray.utils.progress import format_best, format_duration

__all__ = ["RunStatus", "format_status", "read_status"]

DEFAULT_STALE_AFTER_S = 600.0


@dataclass
class RunStatus:
    """A status snapshot plus what follows from it (state, rates, ETA).

    Args:
        data: the content of `status.json` (see `synaray.runs.status.build_status`).
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
        """"finished", "failed", "stopped" (written by the run when it ended), else
        "running", or "stale" when a running run has not written for long."""
        if self.data.get("stop_reason") or self.data.get("state") == FINISHED:
            return FINISHED
        if self.data.get("state") in (FAILED, STOPPED):
            return self.data["state"]
        age = self.age_s
        step_s = self.get("time_s", 0.0) / max(1, self.get("step", 0) or 1)
        if age is not None and age > max(self.stale_after_s, 5 * step_s):
            return "stale"
        return RUNNING

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
    from synaray.runs.checkpoint import stored_status

    store = open_run(run, storage)
    return RunStatus(stored_status(store), stale_after_s=stale_after_s,
                     location=display_location(store))
