"""Token-level F-scores (`FBetaScore`, `F1Score`) over each flattened field.

Each field (leaf path of the nested JSON, such as `answer` or `steps[0].text`) keeps
corpus-level integer counts of true positives, false positives and false negatives of SQuAD
tokens (lower case, punctuation and a/an/the removed). Scores are computed from the counts
with exact rational arithmetic and rounded once, so merged shard states give exactly the
one-pass result. A field where every count is 0 (empty on both sides) scores 1.0.
A ground-truth list of strings facing a predicted string holds accepted answers: the counts
of the best-matching one are added (`synaray.rewards.common.best_alternatives`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError
from synaray.metrics.metric import Metric
from synaray.rewards.common import best_alternatives, flatten_fields, leaf_text, token_overlap

__all__ = ["AVERAGES", "F1Score", "FBetaScore", "TokenCountMetric"]

AVERAGES = (None, "micro", "macro", "weighted")


def _check_average(average: Any) -> str | None:
    if average not in AVERAGES:
        raise ConfigError(f"Invalid value for argument `average`. Received: average="
                          f"{average!r}. Expected one of None, 'micro', 'macro', 'weighted'.")
    return average


class TokenCountMetric(Metric):
    """Base of the token-level metrics: per-field TP/FP/FN counts and the `average` rule.

    Subclasses implement `_score(tp, fp, fn) -> Fraction` for one field (or the totals).

    Args:
        average: how the per-field scores become the result:
            None: one score per field, as a list in field-path order (a float when there is
            exactly one field, as with `in_mask=["answer"]`);
            "micro": the score of the counts summed over fields;
            "macro": the unweighted mean of the per-field scores;
            "weighted": the mean weighted by each field's number of true tokens (macro if
            there are none).
        name, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> from fractions import Fraction
        >>> class Jaccard(TokenCountMetric):
        ...     def _score(self, tp, fp, fn):
        ...         return Fraction(tp, tp + fp + fn) if tp + fp + fn else Fraction(1)
        >>> import asyncio
        >>> m = Jaccard(average="macro")
        >>> asyncio.run(m.update_state({"answer": "cat sat down"}, {"answer": "The cat sat."}))
        >>> round(m.result(), 4)
        0.6667
    """

    def __init__(self, average: str | None = None, name: str | None = None,
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(name=name, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.average = _check_average(average)
        self.true_positives = self.add_state("true_positives", {})
        self.false_positives = self.add_state("false_positives", {})
        self.false_negatives = self.add_state("false_negatives", {})

    async def update_batch(self, y_true: list[JsonDataModel],
                           y_pred: list[JsonDataModel | None]) -> None:
        tps: dict[str, int] = {}
        fps: dict[str, int] = {}
        fns: dict[str, int] = {}
        for t, p in zip(y_true, y_pred, strict=True):
            pred_json = p.get_json() if p is not None else {}
            true_fields = flatten_fields(best_alternatives(t.get_json(), pred_json))
            pred_fields = flatten_fields(pred_json)
            for path in set(true_fields) | set(pred_fields):
                tp, fp, fn = token_overlap(leaf_text(true_fields.get(path)),
                                           leaf_text(pred_fields.get(path)))
                tps[path] = tps.get(path, 0) + tp
                fps[path] = fps.get(path, 0) + fp
                fns[path] = fns.get(path, 0) + fn
        self.true_positives.accumulate(tps)
        self.false_positives.accumulate(fps)
        self.false_negatives.accumulate(fns)

    def _score(self, tp: int, fp: int, fn: int) -> Fraction:
        raise NotImplementedError

    def _field_counts(self) -> dict[str, tuple[int, int, int]]:
        tps, fps, fns = (self.true_positives.value, self.false_positives.value,
                         self.false_negatives.value)
        return {path: (tps.get(path, 0), fps.get(path, 0), fns.get(path, 0))
                for path in sorted(set(tps) | set(fps) | set(fns))}

    def result_per_field(self) -> dict[str, float]:
        """The score of each field, by field path."""
        return {path: float(self._score(*counts))
                for path, counts in self._field_counts().items()}

    def result(self) -> float | list[float]:
        """The score (see `average`); 0.0 before any sample."""
        fields = self._field_counts()
        if not fields:
            return 0.0
        scores = {path: self._score(*counts) for path, counts in fields.items()}
        if self.average is None:
            values = [float(s) for s in scores.values()]
            return values[0] if len(values) == 1 else values
        if self.average == "micro":
            return float(self._score(*(sum(c[i] for c in fields.values()) for i in range(3))))
        supports = {path: tp + fn for path, (tp, _, fn) in fields.items()}
        total_support = sum(supports.values())
        if self.average == "weighted" and total_support:
            return float(sum(scores[p] * supports[p] for p in scores) / total_support)
        return float(sum(scores.values(), Fraction(0)) / len(scores))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "average": self.average}


class FBetaScore(TokenCountMetric):
    """Token-level F-beta score of each field, for QA-style text answers.

    `F = (1 + b²) tp / ((1 + b²) tp + b² fn + fp)` on the corpus-level token counts of a
    field: beta > 1 weighs recall more, beta < 1 precision more.

    Args:
        average: None (default), "micro", "macro" or "weighted"; see `TokenCountMetric`.
        beta: a positive number; 1.0 gives `F1Score`.
        name: defaults to "fbeta_score".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> import asyncio
        >>> m = FBetaScore(beta=2.0, in_mask=["answer"])
        >>> asyncio.run(m.update_state({"answer": "cat sat down"}, {"answer": "The cat sat."}))
        >>> round(m.result(), 4)
        0.7143
    """

    def __init__(self, average: str | None = None, beta: float = 1.0, name: str | None = None,
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ConfigError(f"Invalid value for argument `beta`. Received: beta={beta!r}. "
                              "Expected a positive number.")
        super().__init__(average=average, name=name or "fbeta_score", in_mask=in_mask,
                         out_mask=out_mask, in_mask_pattern=in_mask_pattern,
                         out_mask_pattern=out_mask_pattern)
        self.beta = float(beta)
        self._b2 = Fraction(self.beta) ** 2

    def _score(self, tp: int, fp: int, fn: int) -> Fraction:
        if tp == 0 and fp == 0 and fn == 0:
            return Fraction(1)
        weighted_tp = (1 + self._b2) * tp
        return weighted_tp / (weighted_tp + self._b2 * fn + fp)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}


class F1Score(FBetaScore):
    """Token-level F1 score of each field (SQuAD-style), the harmonic mean of P and R.

    Args:
        average: None (default), "micro", "macro" or "weighted"; see `TokenCountMetric`.
            With one field (for example `in_mask=["answer"]`) every choice gives the same
            float.
        name: defaults to "f1_score".
        in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Metric`.

    Example:
        >>> import asyncio
        >>> m = F1Score(in_mask=["answer"])
        >>> m
        <F1Score name=f1_score>
        >>> asyncio.run(m.update_state({"answer": "cat sat down"},
        ...                            {"answer": "The cat sat.", "thinking": "..."}))
        >>> m.result()
        0.8
    """

    def __init__(self, average: str | None = None, name: str | None = None,
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(average=average, beta=1.0, name=name or "f1_score", in_mask=in_mask,
                         out_mask=out_mask, in_mask_pattern=in_mask_pattern,
                         out_mask_pattern=out_mask_pattern)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config
