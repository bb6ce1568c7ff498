"""`ProgramAsJudge`: a synaray `Program` grades the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError, SynarayError
from synaray.rewards.common import parse_number
from synaray.rewards.judge_reward import JudgeReward

__all__ = ["ProgramAsJudge"]

_SCORE_FIELDS = ("reward", "score")


def _pair_input(y_true: JsonDataModel, y_pred: JsonDataModel) -> JsonDataModel:
    schema = {
        "title": "JudgeInput",
        "type": "object",
        "properties": {"y_true": y_true.get_schema(), "y_pred": y_pred.get_schema()},
        "required": ["y_true", "y_pred"],
    }
    return JsonDataModel(json={"y_true": y_true.get_json(), "y_pred": y_pred.get_json()},
                         schema=schema, name="judge_input")


class ProgramAsJudge(JudgeReward):
    """A `Program` judges each prediction; its `reward` (or `score`) field is the reward.

    The program is called as `await program(inputs)`. A program with two inputs (its
    `input_schemas` has two entries, as in Synalinks) receives `[y_true, y_pred]`; any other
    receives one `JsonDataModel` `{"y_true": {...}, "y_pred": {...}}`. Its output must have a
    numeric `reward` or `score` field, which is mapped linearly from `scale` to [0, 1] and
    clipped. A program that returns None (a failed LM call inside it), raises a synaray
    error, or gives no numeric score scores 0.0 and is counted in `failed_judgements`.

    Args:
        program: the judge program (serialized with `synaray.saving.serialize_object`).
        scale: `(low, high)` of the score the program gives; (0, 1) by default.
        name: defaults to "program_as_judge".
        reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.

    Example:
        ```python
        judge_program = synaray.Program(inputs=x0, outputs=xn)   # outputs a `reward` field
        program.compile(reward=synaray.rewards.ProgramAsJudge(program=judge_program),
                        optimizer=synaray.optimizers.RandomFewShot())
        ```
    """

    JUDGE_ARGUMENT = "program"

    def __init__(self, program: Any = None, scale: Sequence[float] = (0, 1),
                 name: str | None = None, reduction: str | None = "mean",
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(scale=scale, name=name, reduction=reduction, in_mask=in_mask,
                         out_mask=out_mask, in_mask_pattern=in_mask_pattern,
                         out_mask_pattern=out_mask_pattern)
        if program is None or not callable(program):
            raise ConfigError(f"Invalid value for argument `program`. Received: {program!r}. "
                              "ProgramAsJudge needs a synaray Program.")
        self.program = program

    def _inputs(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> Any:
        schemas = getattr(self.program, "input_schemas", None)
        if isinstance(schemas, (list, tuple)) and len(schemas) == 2:
            return [y_true, y_pred]
        return _pair_input(y_true, y_pred)

    async def judge_score(self, y_true: JsonDataModel,
                          y_pred: JsonDataModel) -> float | None:
        try:
            output = await self.program(self._inputs(y_true, y_pred))
        except SynarayError:
            return None
        data = output.get_json() if hasattr(output, "get_json") else output
        if not isinstance(data, dict):
            return None
        return next((parse_number(data[f]) for f in _SCORE_FIELDS if f in data), None)
