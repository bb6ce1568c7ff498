"""Answers from a fixed set: the Generator constrains the model to the Literal's labels.

A classification task's output (a `Literal` field, as intent_recognition's) reaches the model
as a JSON schema `enum`, and on a llama.cpp server (structured output "grammar", what
"auto" picks for the local model) as a GBNF grammar whose answer rule admits exactly the
labels, so a candidate program can never answer outside the set.
"""

from __future__ import annotations

import json
import re

import synaray
from helpers.openai_stub import StubReply
from synaray.datasets import get_task

LABELS = ["add_to_playlist", "book_restaurant", "get_weather", "play_music",
          "search_screening_event", "search_creative_work", "rate_book"]


async def _program(lm):
    task = get_task("intent_recognition")
    inputs = synaray.Input(data_model=task.input_data_model)
    outputs = await synaray.Generator(data_model=task.output_data_model, language_model=lm,
                                      instructions=task.instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs), task


async def test_a_literal_answer_is_sent_as_an_enum_and_a_grammar_of_its_labels(openai_stub):
    openai_stub.script(StubReply(json.dumps({"answer": "get_weather"})))
    lm = synaray.LanguageModel("openai/test", api_base=openai_stub.api_base, api_key="sk-test",
                               cache=False, structured_output="grammar")
    program, task = await _program(lm)
    prediction = await program(task.input_data_model(utterance="Will it rain tomorrow?"))
    assert prediction.get_json() == {"answer": "get_weather"}
    grammar = openai_stub.requests[-1]["grammar"]
    answer_rule = next(line for line in grammar.splitlines()
                       if line.startswith("root-answer ::="))
    alternatives = re.findall(r'"\\"([a-z_]+)\\""', answer_rule)
    assert sorted(alternatives) == sorted(LABELS)  # nothing but the labels
    (generator,) = program.trainable_modules
    assert generator.schema["properties"]["answer"]["enum"] == LABELS
