"""`memo_for`: per-schema work is reused, and never served for a schema that changed."""

from __future__ import annotations

from synaray.lm.grammar import schema_to_gbnf
from synaray.lm.parsing import prompt_schema
from synaray.lm.schema_memo import memo_for


def schema(*fields: str) -> dict:
    return {"title": "Out", "type": "object",
            "properties": {f: {"type": "string"} for f in fields}, "required": list(fields)}


def test_same_schema_object_reuses_its_work():
    s = schema("answer")
    first = memo_for(s)
    assert memo_for(s) is first
    assert first.prompt == prompt_schema(s) and first.grammar == schema_to_gbnf(s)
    assert first.data_model(answer="x").get_json() == {"answer": "x"}


def test_a_schema_edited_in_place_gets_fresh_work():
    s = schema("answer")
    before = memo_for(s)
    s["properties"]["reason"] = {"type": "string"}
    s["required"].append("reason")
    after = memo_for(s)
    assert after is not before
    assert "reason" in after.prompt and "reason" in after.grammar
    assert "reason" not in before.prompt  # the old memo kept its own copy
