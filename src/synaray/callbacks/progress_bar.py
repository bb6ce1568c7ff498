"""`ProgressBar`: shows a fit's generations, samples and LM calls, with rate and ETA."""

from __future__ import annotations

from collections.abc import Callable

from synaray.callbacks.callback import Callback
from synaray.utils.progress import Progress, best_so_far, format_best

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """Counts generations towards `epochs x steps_per_epoch`, plus LM calls and failures.

    One line shows the generation, the rate, LM calls (and calls per second), failures, the
    samples scored so far (updated while a generation runs), the epoch, the best reward so
    far (validation; "(train)": best minibatch reward before any validation) and the ETA:
    the same fields as `synaray status` for a RayEngine run.

    On a terminal the line is redrawn in place; in a log file a new line is printed every
    `interval_s` seconds or `percent_step` % of the generations, whichever comes first
    (`synaray.utils.progress.Progress`), as JSON with `--log-format json`.

    Args:
        interval_s: seconds between lines when not on a terminal (None: the process's
            progress settings, 10 s).
        percent_step: a line also after this many percent of the generations (None: the
            settings', 5 %).
        clock: a `time.monotonic`-like function (for tests).

    Example:
        >>> ProgressBar(interval_s=30).interval_s
        30
    """

    def __init__(self, interval_s: float | None = None, percent_step: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.percent_step = percent_step
        self.clock = clock
        self.bar: Progress | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        opt = self.optimizer
        total = opt.epochs * opt.steps_per_epoch
        self.bar = Progress(total, desc=f"fit {self.program.name}", interval_s=self.interval_s,
                            unit="generations", percent_step=self.percent_step,
                            clock=self.clock)
        self.bar.done = opt.generation
        self._seen_calls = opt.spent.lm_calls
        self._seen_failures = opt.spent.lm_failures
        self._samples = 0

    def on_progress(self, logs: dict | None = None) -> None:
        if self.bar is not None and logs:
            self._samples = int(logs.get("samples", 0))
            self.bar.update(0, samples=self._samples)

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        opt = self.optimizer
        best = format_best(*best_so_far(opt.best_val_reward, opt.history))
        self.bar.update(1, lm_calls=opt.spent.lm_calls - self._seen_calls,
                        failures=opt.spent.lm_failures - self._seen_failures,
                        epoch=f"{opt.epoch + 1}/{opt.epochs}", best=best)
        self._seen_calls = opt.spent.lm_calls
        self._seen_failures = opt.spent.lm_failures

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
