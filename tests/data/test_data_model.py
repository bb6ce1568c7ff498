import pickle
from typing import Literal

import pydantic
import pytest

import synaray
from synaray.data import DataModel, Field, JsonDataModel, data_model_from_schema
from synaray.errors import DataError


class Answer(DataModel):
    thinking: str = Field(description="Step by step")
    answer: Literal["plausible", "implausible"]
    score: float = 0.5


def test_extra_fields_are_forbidden():
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Answer(thinking="t", answer="plausible", surprise=1)


def test_json_and_schema_accessors():
    value = Answer(thinking="t", answer="plausible")
    assert value.get_json() == {"thinking": "t", "answer": "plausible", "score": 0.5}
    assert value.get("answer") == "plausible"
    assert value.keys() == ["thinking", "answer", "score"]
    assert Answer.get_schema()["properties"]["thinking"]["description"] == "Step by step"


def test_conversion_both_ways():
    value = Answer(thinking="t", answer="implausible", score=0.25)
    as_json = value.to_json_data_model()
    assert isinstance(as_json, JsonDataModel)
    assert as_json.get_json() == value.get_json()
    assert as_json.get_schema() == Answer.get_schema()
    assert as_json.to_data_model(Answer) == value
    rebuilt = as_json.to_data_model()  # class rebuilt from the schema alone
    assert rebuilt.get_json() == value.get_json()
    assert as_json == value


def test_to_data_model_names_the_problem():
    bad = JsonDataModel(json={"thinking": "t", "answer": "maybe"}, schema=Answer.get_schema())
    with pytest.raises(DataError, match="Answer"):
        bad.to_data_model(Answer)


def test_schema_rebuild_validates_like_the_original():
    Model = data_model_from_schema(Answer.get_schema())
    assert Model(thinking="t", answer="plausible").get_json()["score"] == 0.5
    with pytest.raises(pydantic.ValidationError):
        Model(thinking="t", answer="maybe")
    assert data_model_from_schema(Answer.get_schema()) is Model  # cached


def test_json_data_model_pickles():
    value = JsonDataModel(json={"a": [1, 2]}, schema={"type": "object"}, name="x")
    clone = pickle.loads(pickle.dumps(value))
    assert clone == value and clone.get_schema() == {"type": "object"} and clone.name == "x"


def test_top_level_names_resolve_lazily():
    assert synaray.DataModel is DataModel
    assert synaray.JsonDataModel is JsonDataModel
