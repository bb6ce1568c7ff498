"""A custom program for `synaray fit`, named in a run config by `module:function`.

`examples/qa_custom_program.yaml` says::

    program:
      builder: "examples.programs:build_qa"
    data:
      input_model: "examples.programs:Question"
      output_model: "examples.programs:Answer"

`synaray fit` imports this module from the current directory (run it from the repository
root, or under `ray job submit --working-dir .`), calls `build_qa` with the keyword
arguments it declares (`language_model` is the config's `model`; `program.args` adds more)
and awaits it, since it is async.

Example:
    >>> import asyncio, synaray
    >>> program = asyncio.run(build_qa(synaray.LanguageModel("local/smollm2-135m")))
    >>> program.name, [m.name for m in program.modules]
    ('qa', ['generator'])
"""

from __future__ import annotations

from typing import Any

import synaray

__all__ = ["Answer", "Question", "build_qa"]

DEFAULT_INSTRUCTIONS = "Answer the question with one to three words."


class Question(synaray.DataModel):
    """A short general-knowledge question."""

    question: str = synaray.Field(description="A short general-knowledge question")


class Answer(synaray.DataModel):
    """A short answer."""

    answer: str = synaray.Field(description="The answer, in one to three words")


async def build_qa(language_model: Any,
                   instructions: str = DEFAULT_INSTRUCTIONS) -> synaray.Program:
    """A one-step question-answering program: Question -> Generator -> Answer."""
    inputs = synaray.Input(data_model=Question)
    outputs = await synaray.Generator(data_model=Answer, language_model=language_model,
                                      instructions=instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name="qa",
                           description="Short answers to general-knowledge questions")
