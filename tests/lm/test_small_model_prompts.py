"""Prompts that help small models: no name-restating descriptions, a max_tokens sized to the
output schema, and a looping answer failing at once (no repair call)."""

from __future__ import annotations

import json
from typing import Literal

import pytest

import synaray
from helpers.openai_stub import StubReply
from synaray.lm import LanguageModel
from synaray.lm.field_descriptions import redundant_description
from synaray.lm.parsing import prompt_schema, repeating_tail
from synaray.lm.token_budget import DEFAULT_MAX_TOKENS, max_tokens_for_schema
from synaray.modules.prompts import build_messages

MESSAGES = [{"role": "user", "content": "How many?"}]
LOOP = '{"answer": "' + "The answer is: " * 30 + "The ans"


class Counted(synaray.DataModel):
    answer: str = synaray.Field(description="The answer.")
    unit: str = synaray.Field(description="The unit of the count, such as apples")


class Verdict(synaray.DataModel):
    answer: Literal["plausible", "implausible"] = synaray.Field(description="the answer")


def make_lm(stub, **kwargs) -> LanguageModel:
    kwargs.setdefault("cache", False)
    return LanguageModel("openai/test", api_base=stub.api_base, api_key="sk-test", **kwargs)


# -- descriptions that restate the field name ----------------------------------------------
@pytest.mark.parametrize(("name", "description"), [
    ("answer", "The answer"), ("answer", "Answer."), ("answer", "the answer to output"),
    ("answer", "The answers"), ("final_answer", "The final answer"),
    ("finalAnswer", "final answer"), ("answer", "The"), ("words", "The words."),
])
def test_a_description_that_restates_the_name_is_redundant(name, description):
    assert redundant_description(name, description)


@pytest.mark.parametrize(("name", "description"), [
    ("answer", "The number of objects, written with digits"),
    ("intent", "The intent of the utterance"),
    ("thinking", "Your step by step thinking"),
    ("answer", "The answer, in one to three words"),
    ("answer", "Whether the statement is plausible or implausible"),
])
def test_a_description_that_adds_something_is_kept(name, description):
    assert not redundant_description(name, description)


def test_the_generator_prompt_leaves_out_only_the_redundant_description():
    messages = build_messages({"question": "3 apples and 2 pears?"}, Counted.get_schema(),
                              "Count.", [])
    system = messages[0]["content"]
    assert "- answer (string)\n" in system + "\n"
    assert "The answer" not in system
    assert "- unit (string) : The unit of the count, such as apples" in system


async def test_the_json_schema_in_the_prompt_leaves_it_out_too(openai_stub):
    openai_stub.script(StubReply('{"answer": "5", "unit": "fruits"}'))
    result = await make_lm(openai_stub, structured_output="json_object")(
        MESSAGES, data_model=Counted)
    assert result.ok
    system = openai_stub.requests[0]["messages"][0]["content"]
    schema = json.loads(system.split("JSON schema, and nothing else:\n", 1)[1])
    assert schema["properties"]["answer"] == {"type": "string"}
    assert schema["properties"]["unit"]["description"] == "The unit of the count, such as apples"


def test_prompt_schema_checks_nested_properties_by_their_own_name():
    schema = {"type": "object", "properties": {"item": {"type": "object", "properties": {
        "name": {"type": "string", "description": "The name"},
        "size": {"type": "integer", "description": "The name"}}}}}
    nested = json.loads(prompt_schema(schema))["properties"]["item"]["properties"]
    assert "description" not in nested["name"]
    assert nested["size"]["description"] == "The name"


# -- max_tokens sized to the schema ---------------------------------------------------------
def test_labels_numbers_and_booleans_get_small_budgets():
    verdict = max_tokens_for_schema(Verdict.get_schema())
    assert verdict <= 64 < DEFAULT_MAX_TOKENS

    class Scalars(synaray.DataModel):
        count: int
        ok: bool
        score: float

    assert max_tokens_for_schema(Scalars.get_schema()) <= 96


def test_a_long_label_gets_more_than_a_short_one():
    short = {"type": "object", "properties": {"a": {"enum": ["x", "y"]}}}
    long = {"type": "object", "properties": {"a": {"enum": ["x", "y" * 300]}}}
    assert max_tokens_for_schema(long) >= 150 > max_tokens_for_schema(short)


def test_free_text_keeps_a_generous_budget_and_lists_get_more():
    free = {"type": "object", "properties": {"answer": {"type": "string"}}}
    bounded = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}}}
    listed = {"type": "object", "properties": {"tags": {"type": "array",
                                                        "items": {"enum": ["ab", "cd"]}}}}
    three = {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 3,
                                                       "items": {"enum": ["ab", "cd"]}}}}
    assert max_tokens_for_schema(free) >= DEFAULT_MAX_TOKENS
    assert max_tokens_for_schema(bounded) == 64
    assert max_tokens_for_schema(listed) > max_tokens_for_schema(three)
    assert max_tokens_for_schema(None) == DEFAULT_MAX_TOKENS
    many = {"type": "object", "properties": {f"f{i}": {"type": "string"} for i in range(9)}}
    assert max_tokens_for_schema(many) == 2048  # the cap


def test_nested_models_and_optionals_are_followed():
    class Inner(synaray.DataModel):
        label: Literal["yes", "no"]

    class Outer(synaray.DataModel):
        inner: Inner
        note: str | None = None

    # the $ref is resolved (not counted as free text) and the Optional free string counts
    assert max_tokens_for_schema(Outer.get_schema()) == max_tokens_for_schema(
        {"type": "object", "properties": {"inner": {"type": "object", "properties": {
            "label": {"enum": ["yes", "no"]}}}, "note": {"type": "string"}}})


async def test_the_sized_budget_is_sent_unless_max_tokens_is_given(openai_stub):
    good = '{"answer": "plausible"}'
    openai_stub.script(*[StubReply(good)] * 5)
    await make_lm(openai_stub)(MESSAGES, data_model=Verdict)
    await make_lm(openai_stub)(MESSAGES)
    await make_lm(openai_stub, max_tokens=300)(MESSAGES, data_model=Verdict)
    await make_lm(openai_stub)(MESSAGES, data_model=Verdict, max_tokens=9)
    await make_lm(openai_stub, max_tokens=None)(MESSAGES, data_model=Verdict)
    sent = [r.get("max_tokens") for r in openai_stub.requests]
    assert sent == [max_tokens_for_schema(Verdict.get_schema()), DEFAULT_MAX_TOKENS, 300, 9,
                    None]


def test_max_tokens_accepts_auto_and_names_what_it_expects():
    assert LanguageModel("openai/x").get_config()["max_tokens"] == "auto"
    with pytest.raises(synaray.errors.ConfigError, match=r"max_tokens.*'auto'"):
        LanguageModel("openai/x", max_tokens="many")


# -- looping answers ------------------------------------------------------------------------
def test_repeating_tail_finds_the_repeated_unit():
    assert repeating_tail(LOOP) == "The answer is: "
    assert repeating_tail("{" + "!" * 60) == "!"
    assert repeating_tail('{"answer": "' + "ab" * 15) is None  # repeated, but only 30 chars
    assert repeating_tail('{"answer": "1, 1, 1, 2"}') is None
    sentence = "The statement talks about a player and a sport that do not go together. "
    assert repeating_tail('{"answer": "' + sentence * 3) == sentence  # a long unit, 3 times
    assert repeating_tail('{"answer": "' + sentence * 2) is None
    assert repeating_tail('{"answer": "sorted: apple banana cherry"}') is None
    assert repeating_tail("") is None and repeating_tail(None) is None


async def test_a_looping_answer_fails_without_a_repair_call(openai_stub):
    openai_stub.script(StubReply(LOOP), StubReply('{"answer": "5", "unit": "x"}'))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Counted)
    assert not result.ok and result.error_type == "LMOutputError"
    assert "the answer repeats 'The answer is: '" in result.error
    assert openai_stub.request_count == 1 and result.attempts == 1


async def test_a_repair_that_loops_says_so(openai_stub):
    openai_stub.script(StubReply("no json here"), StubReply(LOOP))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Counted)
    assert not result.ok and openai_stub.request_count == 2
    assert "after one repair attempt: the answer repeats 'The answer is: '" in result.error


async def test_a_valid_answer_with_repeated_words_is_accepted(openai_stub):
    words = " ".join(["apple"] * 20)
    openai_stub.script(StubReply(json.dumps({"answer": words, "unit": "x"})))
    result = await make_lm(openai_stub)(MESSAGES, data_model=Counted)
    assert result.ok and result.json["answer"] == words
