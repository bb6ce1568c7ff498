"""`ExactMatch`: 1.0 when the masked prediction equals the masked ground truth."""

from __future__ import annotations

import operator
from typing import Any

from synaray.data import JsonDataModel
from synaray.rewards.common import best_alternatives
from synaray.rewards.reward import Reward

__all__ = ["ExactMatch", "exact_match"]


def exact_match(y_true: Any, y_pred: Any) -> float:
    """1.0 if the two samples hold the same JSON, else 0.0 (a None prediction gives 0.0).

    A list of strings in `y_true` where `y_pred` has one string holds accepted answers: the
    prediction matches if it equals one of them (`best_alternatives`).

    Example:
        >>> exact_match({"answer": "4"}, {"answer": "4"}), exact_match({"answer": "4"}, None)
        (1.0, 0.0)
        >>> exact_match({"answer": ["4", "four"]}, {"answer": "four"})
        1.0
    """
    if y_true is None or y_pred is None:
        return 0.0
    pred = _json_of(y_pred)
    return float(best_alternatives(_json_of(y_true), pred, operator.eq) == pred)


def _json_of(value: Any) -> Any:
    return value.get_json() if hasattr(value, "get_json") else value


class ExactMatch(Reward):
    """1.0 when the masked `y_pred` JSON equals the masked `y_true` JSON, else 0.0.

    Equality is strict JSON equality: `"4"` and `4` differ, and so do extra fields, which is
    why the masks matter (`in_mask=["answer"]` compares only the answer). A ground-truth list
    of strings facing a predicted string is a set of accepted answers (DSPy's list-valued
    `answer`): matching any of them is a match.

    Args:
        name: defaults to "exact_match".
        reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`. All
            of them are kept in `get_config` (Synalinks drops `reduction`).

    Example:
        >>> import asyncio
        >>> reward = ExactMatch(in_mask=["answer"])
        >>> reward
        <ExactMatch name=exact_match reduction=mean>
        >>> asyncio.run(reward({"answer": "4"}, {"answer": "4", "thinking": "2+2=4"}))
        1.0
    """

    async def call(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> float:
        return exact_match(y_true, y_pred)
