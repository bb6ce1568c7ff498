"""ProgramAsJudge: inputs given to the program, score field, scale, failures."""

from __future__ import annotations

import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip
from tests.rewards.fakes import FakeJudgeProgram

from synaray.data import JsonDataModel
from synaray.errors import ConfigError
from synaray.rewards import ProgramAsJudge


async def test_one_input_program_receives_both_sides_as_one_record():
    program = FakeJudgeProgram(value=0.75)
    judge = ProgramAsJudge(program=program, in_mask=["answer"])
    assert await judge({"answer": "4"}, {"answer": "5", "thinking": "x"}) == 0.75
    (inputs,) = program.inputs
    assert isinstance(inputs, JsonDataModel)
    assert inputs.get_json() == {"y_true": {"answer": "4"}, "y_pred": {"answer": "5"}}
    assert set(inputs.get_schema()["properties"]) == {"y_true", "y_pred"}


async def test_two_input_program_receives_the_pair_as_in_synalinks():
    program = FakeJudgeProgram(value=1.0, two_inputs=True)
    await ProgramAsJudge(program=program)({"a": 1}, {"a": 2})
    y_true, y_pred = program.inputs[0]
    assert y_true.get_json() == {"a": 1} and y_pred.get_json() == {"a": 2}


@pytest.mark.parametrize(("field", "value", "scale", "expected"), [
    ("reward", 0.4, (0, 1), 0.4),
    ("score", 4, (1, 5), 0.75),
    ("score", 12, (1, 10), 1.0),
    ("reward", -1, (0, 1), 0.0),
])
async def test_score_field_is_mapped_and_clipped(field, value, scale, expected):
    judge = ProgramAsJudge(program=FakeJudgeProgram(value=value, field=field), scale=scale)
    assert await judge({"a": 1}, {"a": 1}) == expected


@pytest.mark.parametrize("program", [FakeJudgeProgram(value=None),
                                     FakeJudgeProgram(value="great", field="reward"),
                                     FakeJudgeProgram(value=1.0, field="verdict")])
async def test_failed_judge_program_scores_zero_and_is_counted(program):
    judge = ProgramAsJudge(program=program)
    assert await judge({"a": 1}, {"a": 1}) == 0.0
    assert judge.failed_judgements == 1


def test_a_program_is_required():
    with pytest.raises(ConfigError, match="`program`"):
        ProgramAsJudge()


def test_config_round_trip():
    judge = ProgramAsJudge(program=FakeJudgeProgram(value=0.5, field="score"), scale=(1, 5),
                           reduction="sum")
    rebuilt = assert_config_round_trip(judge)
    assert rebuilt.program.field == "score" and rebuilt.scale == (1, 5)
