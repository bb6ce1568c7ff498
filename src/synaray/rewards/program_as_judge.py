"""`ProgramAsJudge`: a synaray `Program` grades the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synaray.data import JsonDataModel
from synaray.errors import ConfigError, SynarayError
from synaray.rewards.common import parse_number
from synaray.rewards.lm_as_judge import standardize_scale, to_unit_interval
from synaray.rewards.reward import Reward
from synaray.saving import deserialize_object, serialize_object

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


class ProgramAsJudge(Reward):
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

    def __init__(self, program: Any = None, scale: Sequence[float] = (0, 1),
                 name: str | None = None, reduction: str | None = "mean",
                 in_mask: list[str] | None = None, out_mask: list[str] | None = None,
                 in_mask_pattern: str | None = None,
                 out_mask_pattern: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, in_mask=in_mask, out_mask=out_mask,
                         in_mask_pattern=in_mask_pattern, out_mask_pattern=out_mask_pattern)
        if program is None or not callable(program):
            raise ConfigError(f"Invalid value for argument `program`. Received: {program!r}. "
                              "ProgramAsJudge needs a synaray Program.")
        self.program = program
        self.scale = standardize_scale(scale)
        self.failed_judgements = 0

    def _inputs(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> Any:
        schemas = getattr(self.program, "input_schemas", None)
        if isinstance(schemas, (list, tuple)) and len(schemas) == 2:
            return [y_true, y_pred]
        return _pair_input(y_true, y_pred)

    async def call(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> float:
        try:
            output = await self.program(self._inputs(y_true, y_pred))
        except SynarayError:
            output = None
        score = None
        if output is not None:
            data = output.get_json() if hasattr(output, "get_json") else output
            if isinstance(data, dict):
                score = next((parse_number(data[f]) for f in _SCORE_FIELDS if f in data), None)
        if score is None:
            self.failed_judgements += 1
            return 0.0
        return to_unit_interval(score, self.scale)

    def reset_counters(self) -> None:
        super().reset_counters()
        self.failed_judgements = 0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "program": serialize_object(self.program),
                "scale": list(self.scale)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ProgramAsJudge:
        config = dict(config)
        program = deserialize_object(config.pop("program"))
        return cls(program=program, **config)
