"""schema_to_gbnf: every grammar parses, accepts its schema's JSON and rejects the rest."""

from __future__ import annotations

import json
from typing import Literal

import pytest

import synaray
from helpers.gbnf import Grammar
from synaray.errors import ConfigError
from synaray.lm.grammar import gbnf_literal, schema_to_gbnf


class Address(synaray.DataModel):
    city: str
    zip_code: int | None = None


class Person(synaray.DataModel):
    name: str
    mood: Literal["happy", "sad"]
    age: int
    height_m: float
    admin: bool
    home: Address
    past_homes: list[Address]
    nickname: str | None = None
    tags: list[str] = synaray.Field(default_factory=list)


class Node(synaray.DataModel):
    value: int
    children: list[Node] = synaray.Field(default_factory=list)


def grammar_of(model_or_schema, **kwargs) -> Grammar:
    schema = model_or_schema if isinstance(model_or_schema, dict) \
        else model_or_schema.get_schema()
    return Grammar(schema_to_gbnf(schema, **kwargs))


PERSON = {"name": 'Ann "A" \\ Smith\n', "mood": "happy", "age": -3, "height_m": 1.7e0,
          "admin": False, "home": {"city": "Zürich", "zip_code": 8000},
          "past_homes": [{"city": "Bern"}, {"city": "Basel", "zip_code": None}],
          "nickname": None, "tags": ["a", "b"]}


@pytest.mark.parametrize("indent", [None, 2])
def test_nested_model_accepts_valid_documents(indent):
    grammar = grammar_of(Person)
    assert grammar.matches(json.dumps(PERSON, indent=indent, ensure_ascii=False))
    assert grammar.matches(json.dumps(PERSON, ensure_ascii=True))  # \\u escapes


def test_optional_properties_may_be_left_out_but_required_may_not():
    grammar = grammar_of(Person)
    short = {k: v for k, v in PERSON.items() if k not in ("nickname", "tags")}
    assert grammar.matches(json.dumps(short))
    assert not grammar.matches(json.dumps({k: v for k, v in PERSON.items() if k != "age"}))


def test_properties_keep_their_declared_order():
    reordered = {"mood": PERSON["mood"], **{k: v for k, v in PERSON.items() if k != "mood"}}
    assert not grammar_of(Person).matches(json.dumps(reordered))


@pytest.mark.parametrize("field, bad", [
    ("mood", "angry"), ("age", 1.5), ("age", "3"), ("admin", "yes"), ("home", "Bern"),
    ("past_homes", {"city": "x"}), ("tags", [1]), ("name", None),
])
def test_wrong_types_and_enum_values_are_rejected(field, bad):
    assert not grammar_of(Person).matches(json.dumps({**PERSON, field: bad}))


def test_extra_keys_and_raw_control_characters_are_rejected():
    grammar = grammar_of(Person)
    assert not grammar.matches(json.dumps({**PERSON, "extra": 1}))
    raw = json.dumps(PERSON).replace("\\n", "\n")  # an unescaped newline inside a string
    assert not grammar.matches(raw)


def test_all_optional_object_accepts_any_ordered_subset():
    schema = {"type": "object", "properties": {"a": {"type": "integer"},
                                               "b": {"type": "string"},
                                               "c": {"type": "boolean"}}}
    grammar = grammar_of(schema)
    for doc in ({}, {"a": 1}, {"b": "x"}, {"c": True}, {"a": 1, "c": False},
                {"b": "x", "c": True}, {"a": 1, "b": "x", "c": True}):
        assert grammar.matches(json.dumps(doc)), doc
    assert not grammar.matches('{"b": "x", "a": 1}')
    assert not grammar.matches('{, "a": 1}')


def test_optional_members_before_the_first_required_one():
    schema = {"type": "object", "required": ["b"],
              "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    grammar = grammar_of(schema)
    assert grammar.matches('{"a": 1, "b": 2}') and grammar.matches('{"b": 2}')
    assert not grammar.matches('{"a": 1}')


def test_recursive_refs():
    grammar = grammar_of(Node)
    doc = {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}
    assert grammar.matches(json.dumps(doc))
    assert not grammar.matches('{"value": 1, "children": [{"children": []}]}')


def test_arrays_with_bounds_and_tuples():
    schema = {"type": "object", "required": ["xs", "pair"], "properties": {
        "xs": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2},
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}}}
    grammar = grammar_of(schema)
    assert grammar.matches('{"xs": [1], "pair": [1, "a"]}')
    assert grammar.matches('{"xs": [1, 2], "pair": [0, ""]}')
    assert not grammar.matches('{"xs": [], "pair": [1, "a"]}')
    assert not grammar.matches('{"xs": [1, 2, 3], "pair": [1, "a"]}')
    assert not grammar.matches('{"xs": [1], "pair": ["a", 1]}')


def test_strings_are_bounded():
    schema = {"type": "object", "required": ["s", "t"], "properties": {
        "s": {"type": "string"}, "t": {"type": "string", "minLength": 2, "maxLength": 3}}}
    grammar = grammar_of(schema, max_string_length=5)
    assert grammar.matches('{"s": "abcde", "t": "ab"}')
    assert not grammar.matches('{"s": "abcdef", "t": "ab"}')
    assert not grammar.matches('{"s": "", "t": "abcd"}')
    assert not grammar.matches('{"s": "", "t": "a"}')
    assert "char*" in schema_to_gbnf(schema, max_string_length=None)


def test_const_numbers_null_and_any_values():
    schema = {"type": "object", "required": ["k", "n", "z", "any", "m"], "properties": {
        "k": {"const": "fixed"}, "n": {"type": ["number", "null"]}, "z": {"type": "null"},
        "any": {}, "m": {"type": "object", "additionalProperties": {"type": "integer"}}}}
    grammar = grammar_of(schema)
    assert grammar.matches('{"k": "fixed", "n": -0.5e-3, "z": null, '
                           '"any": {"x": [1, {"y": null}]}, "m": {"a": 1, "b": 2}}')
    assert grammar.matches('{"k": "fixed", "n": null, "z": null, "any": "s", "m": {}}')
    assert not grammar.matches('{"k": "other", "n": 1, "z": null, "any": 1, "m": {}}')
    assert not grammar.matches('{"k": "fixed", "n": 01, "z": null, "any": 1, "m": {}}')
    assert not grammar.matches('{"k": "fixed", "n": 1, "z": null, "any": 1, "m": {"a": "x"}}')


def test_enum_of_mixed_values_and_unicode_literals():
    schema = {"enum": ["é", 1, None, "say \"hi\""]}
    grammar = grammar_of(schema)
    for value in ("é", 1, None, 'say "hi"'):
        assert grammar.matches(json.dumps(value, ensure_ascii=False))
    assert not grammar.matches('"e"')


def test_all_of_with_one_ref_is_followed():
    schema = {"$defs": {"A": {"type": "object", "required": ["a"],
                              "properties": {"a": {"type": "integer"}}}},
              "type": "object", "required": ["x"],
              "properties": {"x": {"allOf": [{"$ref": "#/$defs/A"}], "description": "d"}}}
    assert grammar_of(schema).matches('{"x": {"a": 1}}')


def test_literal_escaping():
    assert gbnf_literal('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'


def test_grammar_text_is_stable_and_root_comes_first():
    text = schema_to_gbnf(Person.get_schema())
    assert text == schema_to_gbnf(Person.get_schema())
    assert text.splitlines()[0].startswith("root ::= ")


def test_bad_input_raises_config_error():
    with pytest.raises(ConfigError):
        schema_to_gbnf("not a schema")
    with pytest.raises(ConfigError, match="Missing"):
        schema_to_gbnf({"$ref": "#/$defs/Missing"})


@pytest.mark.llm
async def test_real_server_follows_grammars_of_every_shape(local_lm):
    prompt = [{"role": "user", "content": "Describe a person called Ann as JSON."}]
    for model in (Person, Node, Address):
        result = await local_lm(prompt, data_model=model, max_tokens=300)
        assert result.ok, (model.__name__, result.error, result.text)
        model.model_validate(result.json)
