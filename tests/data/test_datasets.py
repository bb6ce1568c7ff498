import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synaray import datasets
from synaray.data import DataModel, load_jsonl, load_parquet
from synaray.errors import ConfigError, DataError


class Q(DataModel):
    query: str


class A(DataModel):
    answer: str


ROWS = [{"id": "r1", "input": "one", "target": "1"}, {"id": "r2", "input": "two", "target": "2"}]


def test_load_jsonl_maps_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    ds = load_jsonl(path, Q, A, input_fields={"query": "input"}, output_fields={"answer": "target"})
    assert ds.ids == ["r1", "r2"]
    assert ds.x[1] == Q(query="two") and ds.y[0] == A(answer="1")
    assert ds.fetch(["r2"])[0][1].answer == "2"


def test_load_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    ds = load_parquet(str(path), Q, A, input_fields={"query": "input"},
                      output_fields={"answer": "target"}, limit=1)
    assert len(ds) == 1 and ds.x[0].query == "one"


def test_errors_name_file_row_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"id": "r2", "inp": "x"}) + "\n")
    expected = r"bad.jsonl, row 2: missing column 'input' for field 'query'"
    with pytest.raises(DataError, match=expected):
        load_jsonl(path, Q, input_fields={"query": "input"})
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl, line 1: not valid JSON"):
        load_jsonl(path, Q)
    with pytest.raises(DataError, match="not found"):
        load_jsonl(tmp_path / "missing.jsonl", Q)


def test_builtin_tasks_are_disjoint_and_sized():
    for name in datasets.TASKS:
        train, val, test = datasets.load_task(name, n_train=20, n_val=10, n_test=30)
        assert (len(train), len(val), len(test)) == (20, 10, 30)
        assert not set(train.ids) & set(val.ids) and not set(val.ids) & set(test.ids)
    with pytest.raises(ConfigError, match="Unknown task 'nope'"):
        datasets.load_task("nope")
    with pytest.raises(ConfigError, match="rows"):
        datasets.load_task("sports_understanding", n_train=5000)


def test_object_counting_uses_digit_answers():
    train, _, _ = datasets.load_task("object_counting", n_train=30, n_val=0, n_test=0)
    assert all(y.answer.isdigit() for y in train.y)


def test_squad_keeps_every_distinct_reference_answer_in_file_order():
    rows = [json.loads(line) for line in (Path(datasets.__file__).parent / "files" /
                                          "squad_v1.1_dev.jsonl").read_text().splitlines()[:40]]
    train, _, _ = datasets.load_task("squad", n_train=40, n_val=0, n_test=0)
    assert [y.answer for y in train.y] == [list(dict.fromkeys(r["answers"])) for r in rows]
    assert any(len(y.answer) > 1 for y in train.y)
    spec = datasets.get_task("squad")
    assert spec.output_data_model.model_fields["answer"].annotation is str  # what the LM writes
