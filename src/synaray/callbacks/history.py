"""`History`: the per-epoch logs of a fit (returned by `fit`)."""

from __future__ import annotations

from synaray.callbacks.callback import Callback

__all__ = ["History"]


class History(Callback):
    """Records the logs of every epoch: `history.history["val_reward"]` is a list.

    Also keeps every generation's logs in `history.generations`.

    Example:
        >>> h = History()
        >>> h.on_epoch_end(0, {"reward": 0.5})
        >>> h.history
        {'reward': [0.5]}
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list] = {}
        self.generations: list[dict] = []

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        self.generations.append(dict(logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={sorted(self.history)}>"
