"""A small progress bar for long operations: samples and LM calls done, rate and ETA.

On a terminal it redraws one line; otherwise (logs, CI, Ray job output) it prints a line at
most every `interval_s` seconds and once at the end.

Example:
    >>> bar = Progress(total=4, desc="predict", verbose=False)
    >>> bar.update(2, lm_calls=2)
    >>> bar.done, bar.lm_calls
    (2, 2)
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "best_so_far", "format_best", "format_duration", "format_rate"]


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
    """Counts samples, LM calls and failures; renders `done/total`, rate and ETA."""

    def __init__(self, total: int | None, desc: str = "", verbose: bool = True,
                 interval_s: float = 10.0, stream: TextIO | None = None,
                 unit: str = "samples") -> None:
        self.total = total
        self.unit = unit
        self.desc = desc
        self.verbose = verbose
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.done = 0
        self.lm_calls = 0
        self.failures = 0
        self.start = time.monotonic()
        self._last_print = 0.0
        self._printed_done: int | None = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.extra: dict[str, str] = {}

    def update(self, n: int = 1, lm_calls: int = 0, failures: int = 0, **extra: object) -> None:
        self.done += n
        self.lm_calls += lm_calls
        self.failures += failures
        self.extra.update({k: str(v) for k, v in extra.items()})
        self._maybe_render()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
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

    def _maybe_render(self, final: bool = False) -> None:
        if not self.verbose:
            return
        now = time.monotonic()
        if self._tty:
            if final or now - self._last_print >= 0.1:
                self.stream.write("\r\x1b[2K" + self.line() + ("\n" if final else ""))
                self.stream.flush()
                self._last_print = now
        elif final and self._printed_done == self.done:
            return  # the last line already showed these counts (logs: no duplicate line)
        elif final or now - self._last_print >= self.interval_s:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_print = now
            self._printed_done = self.done

    def close(self) -> None:
        self._maybe_render(final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
