"""LMAsJudge: score scales, clipping, failed judgements, prompt, and the real local model."""

from __future__ import annotations

import pytest
from tests.helpers.config_roundtrip import assert_config_round_trip
from tests.rewards.fakes import FakeJudgeLM

from synaray.errors import ConfigError
from synaray.rewards import LMAsJudge


@pytest.mark.parametrize(("scale", "score", "expected"), [
    ((0, 1), 0.3, 0.3),
    ((0, 1), 1.5, 1.0),
    ((0, 1), -0.2, 0.0),
    ((1, 5), 1, 0.0),
    ((1, 5), 2, 0.25),
    ((1, 5), 3, 0.5),
    ((1, 5), 5, 1.0),
    ((1, 5), 7, 1.0),
    ((1, 5), 0, 0.0),
    ((1, 10), 1, 0.0),
    ((1, 10), 5.5, 0.5),
    ((1, 10), 10, 1.0),
    ((1, 10), 11, 1.0),
    ((1, 10), -3, 0.0),
])
async def test_scales_map_and_clip(scale, score, expected):
    judge = LMAsJudge(language_model=FakeJudgeLM(score=score), scale=scale)
    assert await judge({"answer": "4"}, {"answer": "4"}) == expected
    assert judge.failed_judgements == 0


@pytest.mark.parametrize("mode", ["error_result", "raise", "no_score"])
async def test_failed_judgements_score_zero_and_are_counted(mode):
    judge = LMAsJudge(language_model=FakeJudgeLM(score=5, mode=mode), scale=(1, 5),
                      reduction="none")
    assert await judge([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 3}]) == [0.0, 0.0]
    assert judge.failed_judgements == 2
    judge.reset_counters()
    assert judge.failed_judgements == 0


async def test_numeric_text_score_is_parsed():
    judge = LMAsJudge(language_model=FakeJudgeLM(score=4, mode="text_score"), scale=(1, 5))
    assert await judge({"a": 1}, {"a": 1}) == 0.75


async def test_prompt_holds_masked_truth_and_prediction_and_schema_is_structured():
    lm = FakeJudgeLM(score=1.0)
    judge = LMAsJudge(language_model=lm, instructions="Be harsh.", scale=(1, 10),
                      in_mask=["answer"])
    await judge({"answer": "Paris"}, {"answer": "Lyon", "thinking": "secret reasoning"})
    messages, schema = lm.calls[0]
    assert messages[0] == {"role": "system", "content": "Be harsh."}
    assert '"Paris"' in messages[1]["content"] and '"Lyon"' in messages[1]["content"]
    assert "secret reasoning" not in messages[1]["content"]
    assert schema["required"] == ["critique", "score"]
    assert schema["properties"]["score"]["minimum"] == 1
    assert schema["properties"]["score"]["maximum"] == 10


async def test_missing_prediction_is_not_sent_to_the_judge():
    lm = FakeJudgeLM()
    judge = LMAsJudge(language_model=lm)
    assert await judge({"a": 1}, None) == 0.0
    assert lm.calls == [] and judge.missing_predictions == 1


@pytest.mark.parametrize("scale", [(5, 1), (1,), "1-5", (0, float("inf")), (True, 5)])
def test_bad_scale_is_refused(scale):
    with pytest.raises(ConfigError, match="`scale`"):
        LMAsJudge(language_model=FakeJudgeLM(), scale=scale)


def test_a_language_model_is_required():
    with pytest.raises(ConfigError, match="`language_model`"):
        LMAsJudge()


def test_config_round_trip():
    judge = LMAsJudge(language_model=FakeJudgeLM(score=3), instructions="Grade it.",
                      scale=(1, 5), reduction="min", out_mask=["thinking"])
    config = judge.get_config()
    assert config["scale"] == [1, 5]
    assert config["language_model"]["class_name"] == "FakeJudgeLM"
    rebuilt = assert_config_round_trip(judge)
    assert rebuilt.scale == (1, 5) and rebuilt.language_model.score == 3


@pytest.mark.llm
async def test_real_local_model_gives_values_in_unit_interval(request):
    try:
        lm = request.getfixturevalue("local_lm")
    except pytest.FixtureLookupError:
        pytest.skip("the `local_lm` fixture (tests/conftest.py) is not available yet")
    judge = LMAsJudge(language_model=lm, scale=(1, 5), in_mask=["answer"], reduction="none")
    values = await judge(
        [{"answer": "Paris"}, {"answer": "4"}],
        [{"answer": "Paris", "thinking": "France's capital"}, {"answer": "seventeen"}])
    assert len(values) == 2
    assert all(0.0 <= v <= 1.0 for v in values)
