"""Token-level `Precision` and `Recall` of each flattened field (SQuAD tokens)."""

from __future__ import annotations

from fractions import Fraction

from synaray.metrics.f_score_metrics import TokenCountMetric

__all__ = ["Precision", "Recall"]


class Precision(TokenCountMetric):
    """Token-level precision, `tp / (tp + fp)`, of each field over the corpus.

    With no predicted token in a field the precision is 1.0 if the field had no true token
    either, else 0.0.

    Args:
        average: None (default), "micro", "macro" or "weighted"; see `TokenCountMetric`.
        name: defaults to "precision".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> import asyncio
        >>> m = Precision(in_mask=["answer"])
        >>> asyncio.run(m.update_state({"answer": "cat sat down"}, {"answer": "The cat sat."}))
        >>> m.result()
        1.0
    """

    def _score(self, tp: int, fp: int, fn: int) -> Fraction:
        if tp + fp == 0:
            return Fraction(1 if fn == 0 else 0)
        return Fraction(tp, tp + fp)


class Recall(TokenCountMetric):
    """Token-level recall, `tp / (tp + fn)`, of each field over the corpus.

    With no true token in a field the recall is 1.0 if nothing was predicted there either,
    else 0.0.

    Args:
        average: None (default), "micro", "macro" or "weighted"; see `TokenCountMetric`.
        name: defaults to "recall".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> import asyncio
        >>> m = Recall(in_mask=["answer"])
        >>> asyncio.run(m.update_state({"answer": "cat sat down"}, {"answer": "The cat sat."}))
        >>> round(m.result(), 4)
        0.6667
    """

    def _score(self, tp: int, fp: int, fn: int) -> Fraction:
        if tp + fn == 0:
            return Fraction(1 if fp == 0 else 0)
        return Fraction(tp, tp + fn)
