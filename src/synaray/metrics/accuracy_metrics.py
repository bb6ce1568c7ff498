"""`Accuracy` (exact-match rate) and `BinaryAccuracy` (thresholded numeric fields)."""

from __future__ import annotations

from fractions import Fraction
from numbers import Real
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError
from synaray.metrics.metric import Metric
from synaray.rewards.common import flatten_fields
from synaray.rewards.exact_match import exact_match

__all__ = ["Accuracy", "BinaryAccuracy"]


class Accuracy(Metric):
    """The rate of samples whose masked prediction equals the masked ground truth.

    A missing prediction (None) counts as wrong. The state is two integer counts.

    Args:
        name: defaults to "accuracy".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> import asyncio
        >>> m = Accuracy(in_mask=["answer"])
        >>> asyncio.run(m.update_state([{"answer": "4"}, {"answer": "5"}],
        ...                            [{"answer": "4", "thinking": "..."}, {"answer": "6"}]))
        >>> m.result(), m.get_state()
        (0.5, {'correct': 1, 'count': 2})
    """

    def __init__(self, name: str | None = None, in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(name=name, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.correct = self.add_state("correct", 0)
        self.count = self.add_state("count", 0)

    async def update_batch(self, y_true: list[JsonDataModel],
                           y_pred: list[JsonDataModel | None]) -> None:
        self.correct.accumulate(sum(int(exact_match(t, p)) for t, p in
                                    zip(y_true, y_pred, strict=True)))
        self.count.accumulate(len(y_true))

    def result(self) -> float:
        """correct / count; 0.0 before any sample."""
        count = self.count.value
        return float(Fraction(self.correct.value, count)) if count else 0.0


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, Real))


class BinaryAccuracy(Metric):
    """The rate of numeric fields whose prediction falls on the same side of `threshold`.

    Every numeric or boolean leaf field of the masked `y_true` is a label; it is compared
    with the prediction's field at the same path: both are thresholded (`value > threshold`,
    True counting as 1 and False as 0), and the field is right when the two sides agree.
    A field missing from the prediction, not numeric there, or of a missing prediction
    counts as wrong. Non-numeric fields of `y_true` are ignored. The state is two integer
    counts (correct fields, fields).

    Args:
        threshold: the decision threshold, 0.5 by default.
        name: defaults to "binary_accuracy".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> import asyncio
        >>> m = BinaryAccuracy()
        >>> asyncio.run(m.update_state([{"is_spam": True}, {"is_spam": 0}],
        ...                            [{"is_spam": 0.9}, {"is_spam": 0.7}]))
        >>> m.result()
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str | None = None,
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ConfigError(f"Invalid value for argument `threshold`. Received: "
                              f"threshold={threshold!r}. Expected a number.")
        super().__init__(name=name, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.threshold = float(threshold)
        self.correct = self.add_state("correct", 0)
        self.count = self.add_state("count", 0)

    async def update_batch(self, y_true: list[JsonDataModel],
                           y_pred: list[JsonDataModel | None]) -> None:
        correct = count = 0
        for t, p in zip(y_true, y_pred, strict=True):
            pred_fields = flatten_fields(p.get_json()) if p is not None else {}
            for path, label in flatten_fields(t.get_json()).items():
                if not _is_number(label):
                    continue
                count += 1
                guess = pred_fields.get(path)
                if _is_number(guess) and ((float(guess) > self.threshold)
                                          == (float(label) > self.threshold)):
                    correct += 1
        self.correct.accumulate(correct)
        self.count.accumulate(count)

    def result(self) -> float:
        """correct fields / fields; 0.0 before any numeric field."""
        count = self.count.value
        return float(Fraction(self.correct.value, count)) if count else 0.0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}
