"""`CSVLogger`: one CSV row of logs per epoch."""

from __future__ import annotations

import csv
from pathlib import Path

from synaray.callbacks.callback import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Append each epoch's logs to a CSV file (header written once; flushed every row).

    Args:
        filename: the CSV file.
        separator: the column separator.
        append: keep an existing file's rows (for resumed runs) instead of starting over.

    Example:
        >>> CSVLogger("log.csv").separator
        ','
    """

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self.keys: list[str] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.append and self.filename.exists():
            self.filename.unlink()
        if self.filename.exists():
            with self.filename.open(newline="") as fh:
                header = next(csv.reader(fh, delimiter=self.separator), None)
            self.keys = header[1:] if header else None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        new = not self.filename.exists()
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        with self.filename.open("a", newline="") as fh:
            writer = csv.writer(fh, delimiter=self.separator)
            if new:
                writer.writerow(["epoch", *self.keys])
            writer.writerow([epoch, *("" if logs.get(k) is None else logs[k]
                                      for k in self.keys)])

    def get_config(self) -> dict:
        return {"filename": str(self.filename), "separator": self.separator,
                "append": self.append}
