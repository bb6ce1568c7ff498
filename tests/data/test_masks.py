"""Each mask rule of docs/architecture.md ("Field masks"), on data and on schemas."""

from typing import Literal

import pytest

from synaray.data import (
    DataModel,
    JsonDataModel,
    apply_masks,
    base_form,
    in_mask_json,
    in_mask_schema,
    mask_schema,
    out_mask_json,
    out_mask_schema,
)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("answer", "answer"), ("answers", "answer"), ("answer_1", "answer"),
     ("answers_12", "answer"), ("final_categories", "final_category"), ("boxes", "box"),
     ("status", "status"), ("thinking", "thinking"), ("step_2_answers", "step_2_answer")],
)
def test_base_form(key, expected):
    assert base_form(key) == expected


def test_in_mask_matches_base_form_of_keys_and_mask():
    data = {"answer": "a", "answers": ["b"], "answer_1": "c", "thinking": "t"}
    assert in_mask_json(data, ["answer"]) == {"answer": "a", "answers": ["b"], "answer_1": "c"}
    assert in_mask_json(data, ["answers"]) == in_mask_json(data, ["answer"])


def test_out_mask_drops_base_form_matches():
    data = {"answer": "a", "answer_2": "c", "thinking": "t"}
    assert out_mask_json(data, ["answers"]) == {"thinking": "t"}


def test_pattern_uses_re_search_on_base_form():
    data = {"final_answer": 1, "answer_draft": 2, "other": 3}
    assert in_mask_json(data, pattern="answer") == {"final_answer": 1, "answer_draft": 2}
    assert in_mask_json(data, pattern="^answer") == {"answer_draft": 2}
    assert out_mask_json(data, pattern="draft$") == {"final_answer": 1, "other": 3}


def test_list_and_pattern_are_ored():
    data = {"a": 1, "b": 2, "c_x": 3, "d": 4}
    assert in_mask_json(data, ["a"], pattern="_x$") == {"a": 1, "c_x": 3}
    assert out_mask_json(data, ["a"], pattern="_x$") == {"b": 2, "d": 4}


def test_out_mask_applies_at_every_level():
    data = {"thinking": "t", "result": {"thinking": "u", "answer": 1,
                                        "deep": {"thinking": "v", "k": 2}}}
    assert out_mask_json(data, ["thinking"]) == {"result": {"answer": 1, "deep": {"k": 2}}}


def test_nested_object_survives_in_mask_only_if_its_key_matches():
    data = {"result": {"answer": 1}, "answer": {"answer": 2, "noise": 3}}
    # `result` does not match, so it goes although it holds an `answer`;
    # `answer` matches and its contents are masked in turn.
    assert in_mask_json(data, ["answer"]) == {"answer": {"answer": 2}}


def test_lists_of_objects_are_masked_inside():
    data = {"items": [{"answer": 1, "thinking": "a"}, {"answer": 2, "thinking": "b"}],
            "tags": ["x", "y"]}
    assert in_mask_json(data, ["answer"]) == {"items": [{"answer": 1}, {"answer": 2}]}
    assert out_mask_json(data, ["thinking"]) == {"items": [{"answer": 1}, {"answer": 2}],
                                                 "tags": ["x", "y"]}


def test_in_mask_runs_before_out_mask():
    data = {"answer": 1, "answer_draft": 2, "thinking": 3}
    out = apply_masks(data, in_mask_pattern="answer", out_mask=["answer_draft"])
    assert out == {"answer": 1}
    # in_mask keeps `answer` only; out_mask would then have nothing left to drop.
    assert apply_masks(data, in_mask=["answer"], out_mask=["answer"]) == {}


def test_no_masks_is_identity_and_does_not_mutate():
    data = {"a": {"b": [1, 2]}}
    out = apply_masks(data)
    assert out == data
    in_mask_json(data, ["a"])
    assert data == {"a": {"b": [1, 2]}}


class Step(DataModel):
    answer: str
    thinking: str


class Report(DataModel):
    thinking: str
    answer: Literal["yes", "no"]
    step: Step
    steps: list[Step]
    notes: str = "none"


def test_schema_in_mask_follows_data_through_refs_and_lists():
    schema = in_mask_schema(Report.get_schema(), ["answer"])
    assert list(schema["properties"]) == ["answer", "steps"]
    assert schema["required"] == ["answer", "steps"]
    assert list(schema["properties"]["steps"]["items"]["properties"]) == ["answer"]
    assert "$defs" not in schema


def test_schema_out_mask_at_every_level():
    schema = out_mask_schema(Report.get_schema(), ["thinking"])
    assert "thinking" not in schema["properties"]
    assert list(schema["properties"]["step"]["properties"]) == ["answer"]
    assert schema["properties"]["step"]["required"] == ["answer"]
    assert list(schema["properties"]["steps"]["items"]["properties"]) == ["answer"]


def test_json_data_model_masks_data_and_schema_together():
    value = Report(thinking="t", answer="yes", step=Step(answer="a", thinking="b"),
                   steps=[Step(answer="c", thinking="d")]).to_json_data_model()
    masked = value.masked(out_mask=["thinking"], in_mask_pattern="^(answer|step)$")
    assert masked.get_json() == {"answer": "yes", "step": {"answer": "a"},
                                 "steps": [{"answer": "c"}]}
    assert set(masked.get_schema()["properties"]) == set(masked.get_json())
    assert masked.get_schema() == mask_schema(Report.get_schema(), out_mask=["thinking"],
                                              in_mask_pattern="^(answer|step)$")
    assert isinstance(masked, JsonDataModel)
