"""`LMAsJudge`: a language model grades the prediction; its score is mapped to [0, 1]."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError, SynarayError
from synaray.rewards.common import parse_number
from synaray.rewards.judge_reward import JudgeReward, standardize_scale, to_unit_interval

__all__ = ["DEFAULT_JUDGE_INSTRUCTIONS", "LMAsJudge", "standardize_scale", "to_unit_interval"]

DEFAULT_JUDGE_INSTRUCTIONS = (
    "You are a strict and fair judge. Compare the prediction with the ground truth (when one "
    "is given) and decide how correct and complete the prediction is. Write a short critique, "
    "then give a score."
)


class LMAsJudge(JudgeReward):
    """A language model judges each prediction; its score is mapped to [0, 1] and clipped.

    The model is asked for structured output `{"critique": str, "score": number}` on the
    given `scale`, with the masked ground truth and prediction as JSON in the prompt. The
    score is mapped linearly from `scale` to [0, 1] and clipped. A judge call that fails
    (an error result, an exception from the model, or an answer without a numeric score)
    scores 0.0 and is counted in `failed_judgements`.

    Args:
        language_model: called as `await language_model(messages, schema=...)` and returning
            a result with `.ok` and `.json` (for example `synaray.LanguageModel(...)`).
        instructions: the judge's instructions (system prompt); a generic one by default.
        scale: `(low, high)` of the score the judge gives: (0, 1) (default), (1, 5), (1, 10).
        name: defaults to "lm_as_judge".
        reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.

    Example:
        ```python
        judge = synaray.rewards.LMAsJudge(language_model=lm, scale=(1, 5),
                                          in_mask=["answer"])
        await judge({"answer": "Paris"}, {"answer": "Paris, France"})  # in [0, 1]
        ```
    """

    JUDGE_ARGUMENT = "language_model"

    def __init__(self, language_model: Any = None, instructions: str | None = None,
                 scale: Sequence[float] = (0, 1), name: str | None = None,
                 reduction: str | None = "mean", in_mask: list[str] | None = None,
                 out_mask: list[str] | None = None, in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(scale=scale, name=name, reduction=reduction, in_mask=in_mask,
                         out_mask=out_mask, in_mask_pattern=in_mask_pattern,
                         out_mask_pattern=out_mask_pattern)
        if language_model is None or not callable(language_model):
            raise ConfigError(f"Invalid value for argument `language_model`. Received: "
                              f"{language_model!r}. LMAsJudge needs a language model, such as "
                              "synaray.LanguageModel(...).")
        if instructions is not None and not isinstance(instructions, str):
            raise ConfigError(f"Invalid value for argument `instructions`. Received: "
                              f"{instructions!r}. Expected a string or None.")
        self.language_model = language_model
        self.instructions = instructions

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema of the answer the judge must give."""
        low, high = self.scale
        return {
            "title": "Judgement",
            "type": "object",
            "properties": {
                "critique": {"type": "string", "description": "Why the prediction deserves "
                             "its score, in one or two sentences."},
                "score": {"type": "number", "minimum": low, "maximum": high,
                          "description": f"The score, from {low} (wrong) to {high} "
                                         "(perfect)."},
            },
            "required": ["critique", "score"],
        }

    def messages(self, y_true: JsonDataModel | None, y_pred: JsonDataModel) -> list[dict]:
        """The chat messages sent to the judge for one sample."""
        low, high = self.scale
        parts = []
        if y_true is not None and y_true.get_json():
            parts.append("Ground truth:\n" + json.dumps(y_true.get_json(), ensure_ascii=False))
        parts.append("Prediction:\n" + json.dumps(y_pred.get_json(), ensure_ascii=False))
        parts.append(f"Answer with JSON: {{\"critique\": string, \"score\": a number from "
                     f"{low} to {high}}}.")
        return [{"role": "system", "content": self.instructions or DEFAULT_JUDGE_INSTRUCTIONS},
                {"role": "user", "content": "\n\n".join(parts)}]

    async def judge(self, y_true: JsonDataModel | None,
                    y_pred: JsonDataModel) -> tuple[float | None, str | None]:
        """The judge's raw score (None if the call failed) and its critique."""
        try:
            result = await self.language_model(self.messages(y_true, y_pred),
                                               schema=self.schema)
        except SynarayError:
            return None, None
        answer = getattr(result, "json", None)
        if not getattr(result, "ok", False) or not isinstance(answer, dict):
            return None, None
        critique = answer.get("critique")
        return parse_number(answer.get("score")), critique if isinstance(critique, str) else None

    async def judge_score(self, y_true: JsonDataModel,
                          y_pred: JsonDataModel) -> float | None:
        return (await self.judge(y_true, y_pred))[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "instructions": self.instructions}
