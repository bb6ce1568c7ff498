"""A small progress bar for long operations: samples and LM calls done, rate and ETA.

On a terminal it redraws one line. Otherwise (a log file, CI, `ray job logs`) it prints one
line when `interval_s` seconds have passed or `percent_step` % of the total was done since
the last line, whichever comes first, and one at the end: a 10-minute run writes about 60
lines, not one line of `\r` updates. `--log-format json` (or `configure_progress(
log_format="json")`) prints each line as one JSON object instead; `--quiet` prints none.

Example:
    >>> bar = Progress(total=4, desc="predict", verbose=False)
    >>> bar.update(2, lm_calls=2)
    >>> bar.done, bar.lm_calls
    (2, 2)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["LOG_FORMATS", "Progress", "ProgressSettings", "best_so_far", "configure_progress",
           "format_best", "format_duration", "format_rate", "get_progress_settings",
           "log_event", "log_message", "progress_settings"]

LOG_FORMATS = ("text", "json")


@dataclasses.dataclass(frozen=True)
class ProgressSettings:
    """How progress and messages are printed in this process (the CLI sets them).

    Attributes:
        interval_s: seconds between progress lines when not on a terminal.
        percent_step: also a line after this many percent of the total (None: time only).
        log_format: "text" or "json" (one JSON object per line, never `\r`).
        quiet: no progress lines and no messages at all.

    Example:
        >>> ProgressSettings().interval_s, ProgressSettings().percent_step
        (10.0, 5.0)
    """

    interval_s: float = 10.0
    percent_step: float | None = 5.0
    log_format: str = "text"
    quiet: bool = False

    def __post_init__(self) -> None:
        from synaray.errors import ConfigError

        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"Invalid value for `log_format`. Received: {self.log_format!r}. "
                              f"Expected one of {LOG_FORMATS}.")
        if isinstance(self.interval_s, bool) or not isinstance(self.interval_s, int | float) \
                or self.interval_s < 0:
            raise ConfigError(f"Invalid value for `interval_s`. Received: {self.interval_s!r}."
                              " Expected a number of seconds >= 0.")
        if self.percent_step is not None and (
                isinstance(self.percent_step, bool)
                or not isinstance(self.percent_step, int | float)
                or not 0 < self.percent_step <= 100):
            raise ConfigError(f"Invalid value for `percent_step`. Received: "
                              f"{self.percent_step!r}. Expected a number in (0, 100] or None.")


_SETTINGS = ProgressSettings()


def get_progress_settings() -> ProgressSettings:
    """The settings new `Progress` bars and `log_message` use."""
    return _SETTINGS


def configure_progress(**changes: Any) -> ProgressSettings:
    """Change the process's progress settings (fields of `ProgressSettings`); returns the
    previous ones.

    Example:
        >>> previous = configure_progress(log_format="json")
        >>> get_progress_settings().log_format
        'json'
        >>> _ = configure_progress(**dataclasses.asdict(previous))
    """
    global _SETTINGS
    previous = _SETTINGS
    _SETTINGS = dataclasses.replace(_SETTINGS, **changes)
    return previous


@contextlib.contextmanager
def progress_settings(**changes: Any) -> Iterator[ProgressSettings]:
    """`configure_progress(**changes)` for the duration of a block."""
    previous = configure_progress(**changes)
    try:
        yield get_progress_settings()
    finally:
        configure_progress(**dataclasses.asdict(previous))


def log_event(event: str, fields: dict[str, Any] | None = None,
              stream: TextIO | None = None) -> None:
    """Print one JSON object `{"event": event, **fields}` on its own line (stdout).

    Example:
        >>> log_event("summary", {"reward": 0.5})
        {"event": "summary", "reward": 0.5}
    """
    stream = stream or sys.stdout
    record = {"event": event, **{k: v for k, v in (fields or {}).items() if k != "event"}}
    stream.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
    stream.flush()


def log_message(text: str, prefix: str = "synaray", stream: TextIO | None = None) -> None:
    """A status message: "prefix: text" (text format), `{"event": "message", ...}` (json),
    nothing when quiet."""
    settings = get_progress_settings()
    if settings.quiet:
        return
    if settings.log_format == "json":
        log_event("message", {"source": prefix, "text": text}, stream)
    else:
        stream = stream or sys.stdout
        stream.write(f"{prefix}: {text}\n")
        stream.flush()


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_rate(per_second: float) -> str:
    """A rate that stays readable when slow: "2.50/s", or "1.20/min" below 0.1 per second.

    Example:
        >>> format_rate(2.5), format_rate(0.02)
        ('2.50/s', '1.20/min')
    """
    if 0 < per_second < 0.1:
        return f"{per_second * 60:.2f}/min"
    return f"{per_second:.2f}/s"


def best_so_far(best_val_reward: float | None,
                history: list[dict] | None = None) -> tuple[float | None, str]:
    """The best reward of a search so far and where it comes from.

    The best validation reward once a candidate was validated ("val"); before that, the best
    minibatch reward of any generation ("train"); (None, "") before the first generation.

    Example:
        >>> best_so_far(None, [{"reward": 0.5}, {"reward": 0.75}])
        (0.75, 'train')
    """
    if best_val_reward is not None:
        return float(best_val_reward), "val"
    rewards = [h["reward"] for h in history or [] if h.get("reward") is not None]
    return (float(max(rewards)), "train") if rewards else (None, "")


def format_best(value: float | None, source: str) -> str:
    """`best_so_far` as text: "0.917", "0.750 (train)" or "-"."""
    if value is None:
        return "-"
    return f"{value:.3f}" if source == "val" else f"{value:.3f} ({source})"


class Progress:
    """Counts samples, LM calls and failures; renders `done/total`, rate and ETA.

    Args:
        total: the number of units expected (None: unknown, no percentage or ETA).
        desc: what is counted, first on each line ("evaluate qa").
        verbose: print at all (False, or `--quiet`, prints nothing).
        interval_s: seconds between lines when not on a terminal (None: the process's
            `ProgressSettings`, 10 s by default).
        stream: where lines go (default: stderr).
        unit: the name of what `total` counts.
        percent_step: a line also after this many percent of `total` (None: the settings'
            5 %).
        log_format: "text" or "json" (None: the settings'); in json, `close()` always
            prints a last record with `"final": true`.
        clock: a `time.monotonic`-like function (tests pass a fake one).

    Example:
        >>> import io
        >>> out = io.StringIO()  # not a terminal: whole lines
        >>> bar = Progress(2, desc="demo", stream=out, log_format="json", clock=lambda: 5.0)
        >>> bar.update(2)
        >>> json.loads(out.getvalue())["done"]
        2
    """

    def __init__(self, total: int | None, desc: str = "", verbose: bool = True,
                 interval_s: float | None = None, stream: TextIO | None = None,
                 unit: str = "samples", percent_step: float | None = None,
                 log_format: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        settings = get_progress_settings()
        overrides = {k: v for k, v in (("interval_s", interval_s), ("percent_step", percent_step),
                                      ("log_format", log_format)) if v is not None}
        if overrides:
            settings = dataclasses.replace(settings, **overrides)
        self.total = total
        self.unit = unit
        self.desc = desc
        self.verbose = verbose and not settings.quiet
        self.interval_s = settings.interval_s
        self.percent_step = settings.percent_step
        self.log_format = settings.log_format
        self.stream = stream or sys.stderr
        self.clock = clock or time.monotonic
        self.done = 0
        self.lm_calls = 0
        self.failures = 0
        self.start = self.clock()
        self._last_print = float("-inf")  # the first update prints a line
        self._printed_done: int | None = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.extra: dict[str, Any] = {}
        self.lines_written = 0

    def update(self, n: int = 1, lm_calls: int = 0, failures: int = 0, **extra: object) -> None:
        self.done += n
        self.lm_calls += lm_calls
        self.failures += failures
        self.extra.update(extra)
        self._maybe_render()

    def _elapsed(self) -> float:
        return max(0.0, self.clock() - self.start)

    def line(self) -> str:
        elapsed = self._elapsed()
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [self.desc] if self.desc else []
        parts.append(f"{self.done}/{self.total}" if self.total else f"{self.done}")
        parts.append(f"{self.unit}  {format_rate(rate)}")
        calls_rate = f" ({self.lm_calls / elapsed:.1f}/s)" if elapsed > 0 and self.lm_calls else ""
        parts.append(f"lm_calls={self.lm_calls}{calls_rate}")
        if self.failures:
            parts.append(f"failures={self.failures}")
        parts += [f"{k}={v}" for k, v in self.extra.items()]
        if self.total and 0 < self.done < self.total and rate > 0:
            parts.append(f"eta {format_duration((self.total - self.done) / rate)}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        return "  ".join(parts)

    def record(self, final: bool = False) -> dict[str, Any]:
        """The counts as a dict: what a `--log-format json` line holds."""
        elapsed = self._elapsed()
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = ((self.total - self.done) / rate if self.total and 0 < self.done < self.total
               and rate > 0 else None)
        return {"desc": self.desc, "unit": self.unit, "done": self.done, "total": self.total,
                "percent": round(100.0 * self.done / self.total, 1) if self.total else None,
                "rate_per_s": round(rate, 4), "lm_calls": self.lm_calls,
                "failures": self.failures, "eta_s": None if eta is None else round(eta, 1),
                "elapsed_s": round(elapsed, 1), "final": final, **self.extra}

    def _due(self, now: float) -> bool:
        if now - self._last_print >= self.interval_s:
            return True
        if self.percent_step is None or not self.total:
            return False
        last = self._printed_done or 0
        return (self.done - last) * 100.0 >= self.percent_step * self.total

    def _maybe_render(self, final: bool = False) -> None:
        if not self.verbose:
            return
        now = self.clock()
        if self._tty and self.log_format == "text":
            if final or now - self._last_print >= 0.1:
                self.stream.write("\r\x1b[2K" + self.line() + ("\n" if final else ""))
                self.stream.flush()
                self._last_print = now
            return
        if final and self._printed_done == self.done and self.log_format == "text":
            return  # the last line already showed these counts (logs: no duplicate line)
        if final or self._due(now):
            if self.log_format == "json":
                text = json.dumps({"event": "progress", **self.record(final)}, default=str)
            else:
                text = self.line()
            self.stream.write(text + "\n")
            self.stream.flush()
            self.lines_written += 1
            self._last_print = now
            self._printed_done = self.done

    def close(self) -> None:
        self._maybe_render(final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
