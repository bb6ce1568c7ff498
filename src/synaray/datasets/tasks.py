"""Specifications of the built-in tasks: data models, column mapping, instruction, reward."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from synaray.data.data_model import DataModel, Field
from synaray.data.datasets import Dataset, rows_to_dataset
from synaray.errors import ConfigError

__all__ = ["TASKS", "TaskSpec", "get_task", "load_task"]


class Statement(DataModel):
    statement: str = Field(description="A statement about sports")


class Plausibility(DataModel):
    answer: Literal["plausible", "implausible"] = Field(
        description="Whether the statement is plausible or implausible")


class CountingQuestion(DataModel):
    question: str = Field(description="A question about a list of objects")


class Count(DataModel):
    answer: str = Field(description="The number of objects, written with digits")


class WordList(DataModel):
    words: str = Field(description="Words separated by spaces")


class SortedWords(DataModel):
    answer: str = Field(description="The same words in alphabetical order, separated by spaces")


class Utterance(DataModel):
    utterance: str = Field(description="What the user said")


class Intent(DataModel):
    answer: Literal["add_to_playlist", "book_restaurant", "get_weather", "play_music",
                    "search_screening_event", "search_creative_work", "rate_book"] = Field(
        description="The intent of the utterance")


class ReadingQuestion(DataModel):
    context: str = Field(description="A paragraph of text")
    question: str = Field(description="A question about the paragraph")


class SpanAnswer(DataModel):
    answer: str = Field(description="A short span of the paragraph that answers the question")


class AcceptedSpans(DataModel):
    answer: list[str] = Field(
        description="Every reference answer, first the one labelled demos show")


@dataclass(frozen=True)
class TaskSpec:
    """How a task's rows become (x, y): models, column per field, instruction and reward.

    Example:
        >>> get_task("squad").y_data_model.__name__, get_task("squad").output_data_model.__name__
        ('AcceptedSpans', 'SpanAnswer')
    """

    name: str
    file: str
    input_data_model: type[DataModel]
    output_data_model: type[DataModel]
    prepare: object  # callable(row) -> dict of model fields (x and y together)
    instructions: str
    reward: str = "exact_match"
    metrics: tuple[str, ...] = field(default_factory=tuple)
    # The ground truth's model when it differs from what the program writes (SQuAD keeps all
    # of its reference answers, and its F1 is the best over them).
    target_data_model: type[DataModel] | None = None

    @property
    def y_data_model(self) -> type[DataModel]:
        """The data model of the task's ground truth (`y`)."""
        return self.target_data_model or self.output_data_model


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix):].strip() if text.startswith(prefix) else text.strip()


def _squad(row: dict) -> dict:
    # every distinct reference answer, in the file's order: the official SQuAD F1 is the best
    # over them (the answers often differ only in extent: "Broncos" / "Denver Broncos")
    return {"context": row["context"], "question": row["question"],
            "answer": list(dict.fromkeys(row["answers"]))}


def _counting(row: dict) -> dict:
    digits = [t for t in row.get("targets", []) if t.strip().isdigit()]
    return {"question": row["input"], "answer": digits[0] if digits else row["target"]}


TASKS: dict[str, TaskSpec] = {
    "sports_understanding": TaskSpec(
        "sports_understanding", "sports_understanding.jsonl", Statement, Plausibility,
        lambda r: {"statement": r["input"].strip(), "answer": r["target"]},
        "Determine whether the following statement is plausible or implausible."),
    "object_counting": TaskSpec(
        "object_counting", "object_counting.jsonl", CountingQuestion, Count, _counting,
        "Count the objects asked about and answer with a number written in digits."),
    "word_sorting": TaskSpec(
        "word_sorting", "word_sorting.jsonl", WordList, SortedWords,
        lambda r: {"words": r["input"], "answer": r["target"]},
        "Sort the following words alphabetically."),
    "intent_recognition": TaskSpec(
        "intent_recognition", "intent_recognition.jsonl", Utterance, Intent,
        lambda r: {"utterance": _strip_prefix(r["input"], "Utterance:"), "answer": r["target"]},
        "Predict the intent of the utterance."),
    "squad": TaskSpec(
        "squad", "squad_v1.1_dev.jsonl", ReadingQuestion, SpanAnswer, _squad,
        "Answer the question with a short span copied from the paragraph.",
        reward="f1_score", target_data_model=AcceptedSpans),
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}. Expected one of {sorted(TASKS)}.")
    return TASKS[name]


def _read_rows(spec: TaskSpec) -> list[dict]:
    text = resources.files("synaray.datasets").joinpath("files", spec.file).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_task(name: str, n_train: int = 100, n_val: int = 100,
              n_test: int = 200) -> tuple[Dataset, Dataset, Dataset]:
    """Disjoint train, validation and test Datasets of a built-in task, in file order.

    Raises:
        ConfigError: for an unknown task or sizes that add up to more rows than it has.
    """
    spec = get_task(name)
    rows = _read_rows(spec)
    total = n_train + n_val + n_test
    if min(n_train, n_val, n_test) < 0 or total > len(rows):
        raise ConfigError(
            f"Task {name!r} has {len(rows)} rows; n_train + n_val + n_test = {total} "
            "(each must be >= 0 and the sum at most the row count)."
        )
    prepared = [{"id": r["id"], **spec.prepare(r)} for r in rows[:total]]
    x_fields = {f: f for f in spec.input_data_model.model_fields}
    y_fields = {f: f for f in spec.y_data_model.model_fields}

    def build(part: list[dict]) -> Dataset:
        return rows_to_dataset(part, spec.input_data_model, spec.y_data_model, x_fields,
                               y_fields, source=f"task {name}")

    return (build(prepared[:n_train]), build(prepared[n_train:n_train + n_val]),
            build(prepared[n_train + n_val:total]))
