"""`JudgeReward`: the base of rewards whose score comes from a judge on a `scale`.

`LMAsJudge` (a language model) and `ProgramAsJudge` (a program) differ only in how they ask
for a score; mapping it from `scale` to [0, 1], scoring a failed judgement 0.0 and counting
it, and saving the judge in the config are written here once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from synaray.data import JsonDataModel
from synaray.errors import ConfigError
from synaray.rewards.reward import Reward
from synaray.saving import deserialize_object, serialize_object

__all__ = ["JudgeReward", "standardize_scale", "to_unit_interval"]


def standardize_scale(scale: Any) -> tuple[float, float]:
    """Check a `scale` argument: two numbers `(low, high)` with low < high.

    Raises:
        ConfigError: naming the received value.
    """
    ok = (isinstance(scale, (list, tuple)) and len(scale) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  and math.isfinite(v) for v in scale)
          and scale[0] < scale[1])
    if not ok:
        raise ConfigError(f"Invalid value for argument `scale`. Received: scale={scale!r}. "
                          "Expected two finite numbers (low, high) with low < high, such as "
                          "(0, 1), (1, 5) or (1, 10).")
    return scale[0], scale[1]


def to_unit_interval(score: float, scale: Sequence[float]) -> float:
    """Map `score` from `scale` to [0, 1] linearly, clipping outside values.

    Example:
        >>> to_unit_interval(3, (1, 5)), to_unit_interval(10, (1, 10)), to_unit_interval(7, (1, 5))
        (0.5, 1.0, 1.0)
    """
    low, high = scale
    return min(1.0, max(0.0, (score - low) / (high - low)))


class JudgeReward(Reward):
    """A reward a judge gives on `scale`, mapped to [0, 1] and clipped; a failed judgement
    (`judge_score` returns None) scores 0.0 and is counted in `failed_judgements`.

    Subclasses set `JUDGE_ARGUMENT` (the constructor argument and attribute holding the
    judge, saved with `serialize_object`) and write `judge_score`.

    Example:
        >>> import asyncio
        >>> class LengthJudge(JudgeReward):
        ...     JUDGE_ARGUMENT = "judge"
        ...     def __init__(self, judge=len, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.judge = judge
        ...     async def judge_score(self, y_true, y_pred):
        ...         return self.judge(y_pred.get_json()["answer"]) or None
        >>> reward = LengthJudge(scale=(0, 4))
        >>> asyncio.run(reward({}, {"answer": "ab"})), asyncio.run(reward({}, {"answer": ""}))
        (0.5, 0.0)
        >>> reward.failed_judgements
        1
    """

    JUDGE_ARGUMENT: ClassVar[str] = "judge"

    def __init__(self, scale: Sequence[float] = (0, 1), name: str | None = None,
                 reduction: str | None = "mean", in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        self.scale = standardize_scale(scale)
        self.failed_judgements = 0

    async def judge_score(self, y_true: JsonDataModel,
                          y_pred: JsonDataModel) -> float | None:
        """The judge's score on `scale`, or None when the judgement failed."""
        raise NotImplementedError(f"{type(self).__name__} must implement `judge_score`.")

    async def call(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> float:
        score = await self.judge_score(y_true, y_pred)
        if score is None:
            self.failed_judgements += 1
            return 0.0
        return to_unit_interval(score, self.scale)

    def reset_counters(self) -> None:
        super().reset_counters()
        self.failed_judgements = 0

    def get_config(self) -> dict[str, Any]:
        judge = getattr(self, self.JUDGE_ARGUMENT)
        return {**super().get_config(), self.JUDGE_ARGUMENT: serialize_object(judge),
                "scale": list(self.scale)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        config = dict(config)
        judge = deserialize_object(config.pop(cls.JUDGE_ARGUMENT))
        return cls(**{cls.JUDGE_ARGUMENT: judge}, **config)
