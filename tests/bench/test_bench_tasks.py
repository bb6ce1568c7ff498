"""The comparison bench's task files (`scripts/bench/bench_tasks.py`): what a JSONL row
becomes, and how the bench scores it. The bench's numbers are only as fair as this."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))
from bench_tasks import load_jsonl_task


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def test_list_targets_are_accepted_answers(tmp_path):
    rows = [{"question": f"q{i}", "targets": [str(i), f"n{i}"]} for i in range(20)]
    task = load_jsonl_task(_write(tmp_path / "t.jsonl", rows), ["question"], "targets",
                           n_train=5, n_val=5, n_test=10)
    row = task.test[0]
    first, second = row["y"]["answer"]
    # any accepted answer scores, an answer outside the list does not
    assert task.score(row["y"], {"answer": first}) == 1.0
    assert task.score(row["y"], {"answer": second}) == 1.0
    assert task.score(row["y"], {"answer": "nothing"}) == 0.0
    # the program writes one string; the ground truth keeps the list
    assert task.output_data_model.model_fields["answer"].annotation is str
    assert task.y_data_model.model_fields["answer"].annotation == list[str]


def test_single_answers_stay_plain_and_a_small_set_is_closed(tmp_path):
    rows = [{"text": f"t{i}", "choices": ["yes", "no"],
             "target_scores": {"yes": int(i % 2 == 0), "no": int(i % 2 == 1)}}
            for i in range(12)]
    task = load_jsonl_task(_write(tmp_path / "mc.jsonl", rows), ["text", "choices"],
                           "target_scores", n_train=4, n_val=4, n_test=4)
    answer = task.output_data_model.model_fields["answer"].annotation
    assert get_origin(answer) is Literal and set(get_args(answer)) == {"yes", "no"}
    assert task.y_data_model is task.output_data_model
    row = task.train[0]
    assert row["y"]["answer"] in {"yes", "no"}
    assert row["x"]["choices"] == "- yes\n- no"


def test_a_row_without_an_answer_names_the_line_and_field(tmp_path):
    rows = [{"q": "a", "answer": ["x"]}, {"q": "b", "answer": []}]
    with pytest.raises(SystemExit, match=r"line 2: field 'answer' has no answer"):
        load_jsonl_task(_write(tmp_path / "bad.jsonl", rows), ["q"], "answer",
                        n_train=1, n_val=0, n_test=1)
