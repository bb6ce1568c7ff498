"""bulk_evaluate: Ray Data scoring of a saved program on Parquet, against the loopback stub.

The stub answers like a model would: the right label for most questions, a wrong one for
multiples of 7 and an HTTP 400 (a failed, unretried call) for multiples of 11, so the
rewards, metrics and failures are all exercised.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import synaray
from helpers.openai_stub import OpenAIStub, StubReply
from synaray.engines.bulk_io import (
    RESULT_SCHEMA,
    ResultStore,
    rank_candidates,
    resolve_programs,
)
from synaray.errors import CheckpointError, ConfigError, DataError
from synaray.lm import LanguageModel


class Question(synaray.DataModel):
    q: str


class Answer(synaray.DataModel):
    answer: str


def label(n: int) -> str:
    return "yes" if n % 3 else "no"


def stub_reply(path: str, body: dict) -> StubReply:
    n = int(json.loads(body["messages"][-1]["content"])["q"])
    if n % 11 == 0:
        return StubReply(status=400)
    return StubReply(json.dumps({"answer": "maybe" if n % 7 == 0 else label(n)}))


def asked(stub: OpenAIStub) -> list[str]:
    """The question of every chat request the stub received."""
    return [json.loads(b["messages"][-1]["content"])["q"] for b in stub.requests]


@pytest.fixture
def stub():
    with OpenAIStub(handler=stub_reply, latency_s=0.005) as server:
        yield server


async def build_program(stub: OpenAIStub, instructions: str | None = None) -> synaray.Program:
    lm = LanguageModel("openai/test", api_base=stub.api_base, cache=False, retries=0,
                       max_concurrency=64)
    inputs = synaray.Input(data_model=Question)
    outputs = await synaray.Generator(data_model=Answer, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="yes_or_no")
    if instructions:
        program.set_state({"generator": {"instructions": instructions, "examples": []}})
    program.compile(reward="exact_match", metrics=[synaray.metrics.Accuracy(),
                                                   synaray.metrics.F1Score()])
    return program


def write_data(path, n: int, start: int = 0, **extra_columns) -> str:
    ids = [f"row-{i}" for i in range(start, start + n)]
    table = pa.table({"id": ids, "question": [str(i) for i in range(start, start + n)],
                      "answer": [label(i) for i in range(start, start + n)], **extra_columns})
    pq.write_table(table, path)
    return str(path)


def read_out(out) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in ResultStore(str(out)).part_paths())


def run(program, data, out, **kwargs):
    from synaray.engines.ray.bulk_evaluate import bulk_evaluate

    kwargs.setdefault("verbose", False)
    kwargs.setdefault("num_workers", 2)
    kwargs.setdefault("worker_num_cpus", 0.5)
    return bulk_evaluate(program, data, out, input_fields={"q": "question"}, **kwargs)


# --- with Ray ------------------------------------------------------------------------------
@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_scores_like_program_evaluate(stub, tmp_path):
    program = asyncio.run(build_program(stub))
    program.save(tmp_path / "best_program.json")
    data = write_data(tmp_path / "data.parquet", 200)
    summary = run(str(tmp_path / "best_program.json"), data, tmp_path / "out", batch_size=16,
                  concurrency=16, rows_per_file=64)
    assert stub.request_count == 200

    xs = [Question(q=str(i)) for i in range(200)]
    ys = [Answer(answer=label(i)) for i in range(200)]
    reference = asyncio.run(program.evaluate(xs, ys, verbose=False, return_predictions=True))
    expected = {f"row-{i}": r.reward for i, r in enumerate(reference["predictions"])}

    table = read_out(tmp_path / "out")
    assert table.num_rows == 200 and len(set(table.column("id").to_pylist())) == 200
    assert dict(zip(table.column("id").to_pylist(), table.column("reward").to_pylist(),
                    strict=True)) == expected
    errors = {i for i, e in zip(table.column("id").to_pylist(),
                                table.column("error").to_pylist(), strict=True) if e}
    assert errors == {f"row-{i}" for i in range(200) if i % 11 == 0}
    assert set(table.column("program_id").to_pylist()) == {"best_program"}
    assert summary["reward"] == pytest.approx(reference["reward"])
    assert summary["metrics"] == pytest.approx({"accuracy": reference["accuracy"],
                                                "f1_score": reference["f1_score"]})
    assert summary["rows"] == 200 and summary["missing_rows"] == 0
    assert not summary["complete"]  # the failed rows: a rerun retries them
    assert summary["failures"] == summary["failed_rows"] == len(errors)
    assert summary["lm_calls"] == 200 and summary["lm_failures"] == len(errors)
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert len(ResultStore(str(tmp_path / "out")).part_paths()) >= 2


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_rerun_scores_only_missing_rows_and_summary_covers_all(stub, tmp_path):
    program = asyncio.run(build_program(stub))
    data = write_data(tmp_path / "data.parquet", 120)
    out = tmp_path / "out"
    first = run(program, data, out, batch_size=8, concurrency=8, rows_per_file=30)
    parts = ResultStore(str(out)).part_paths()
    assert len(parts) >= 3
    os.remove(parts[-1])  # as if the run had been killed before its last file
    lost = set(read_out(out).column("id").to_pylist()) ^ {f"row-{i}" for i in range(120)}
    failed = {f"row-{i}" for i in range(120) if i % 11 == 0}  # the stub fails them: retried
    stub.reset()
    second = run(program, data, out, batch_size=8, concurrency=8, rows_per_file=30)
    assert sorted(asked(stub)) == sorted(i.removeprefix("row-") for i in lost | failed)
    assert second["run"]["rows_scored"] == len(lost | failed)
    assert second["run"]["rows_skipped"] == 120 - len(lost | failed)
    assert second["run"]["rows_retried"] == len(failed - lost)
    assert {k: second[k] for k in ("rows", "failures", "lm_calls", "failed_rows")} == \
        {k: first[k] for k in ("rows", "failures", "lm_calls", "failed_rows")}
    assert second["reward"] == pytest.approx(first["reward"])
    assert second["metrics"] == pytest.approx(first["metrics"])
    stub.reset()
    third = run(program, data, out)  # only the rows that keep failing are asked again
    assert sorted(asked(stub)) == sorted(i.removeprefix("row-") for i in failed)
    assert third["run"]["rows_scored"] == len(failed) and third["rows"] == 120
    assert third["metrics"] == pytest.approx(first["metrics"]) and not third["complete"]


_CHILD = textwrap.dedent("""
    import sys
    from synaray.engines.ray.bulk_evaluate import bulk_evaluate
    bulk_evaluate(sys.argv[1], sys.argv[2], sys.argv[3], input_fields={"q": "question"},
                  address=sys.argv[4], batch_size=4, concurrency=4, num_workers=1,
                  worker_num_cpus=0.5, rows_per_file=8, flush_every_s=0.2, verbose=False)
""")


@pytest.mark.ray
@pytest.mark.slow
def test_killed_run_resumes_without_rescoring_written_rows(ray_cluster, tmp_path):
    with OpenAIStub(handler=stub_reply, latency_s=0.1) as stub:
        program = asyncio.run(build_program(stub))
        program.save(tmp_path / "program.json")
        data = write_data(tmp_path / "data.parquet", 240)
        out = tmp_path / "out"
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path / "program.json"), data, str(out),
             ray_cluster.address], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 300
            while len(ResultStore(str(out)).part_paths()) < 3 and child.poll() is None:
                assert time.monotonic() < deadline, "the child wrote no results"
                time.sleep(0.05)
            assert child.poll() is None, child.stderr.read().decode()[-3000:]
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        done = set(read_out(out).column("id").to_pylist())
        assert 0 < len(done) < 240
        time.sleep(1.0)  # the killed driver's actors are gone
        stub.reset()
        summary = run(str(tmp_path / "program.json"), data, out, batch_size=8, concurrency=8)
        requested = {f"row-{q}" for q in asked(stub)}

    failed = {f"row-{i}" for i in range(240) if i % 11 == 0}  # the stub fails them
    assert not requested & (done - failed) and done & failed <= requested
    table = read_out(out)
    ids = table.column("id").to_pylist()
    assert len(ids) == 240 and set(ids) == {f"row-{i}" for i in range(240)}
    assert summary["rows"] == 240 and summary["failed_rows"] == len(failed)
    assert not summary["complete"] and summary["missing_rows"] == 0
    assert summary["run"]["rows_skipped"] == len(done - failed)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_several_programs_and_rows_that_do_not_fit(stub, tmp_path):
    base = asyncio.run(build_program(stub))
    other = asyncio.run(build_program(stub, instructions="Answer yes or no."))
    pq.write_table(pa.table({"id": list(range(42)),
                             "question": [str(i) for i in range(40)] + [None, "5"],
                             "answer": [label(i) for i in range(40)] + ["yes", None]}),
                   tmp_path / "data.parquet")
    summary = run({"base": base, "other": other}, str(tmp_path / "data.parquet"),
                  tmp_path / "out", batch_size=8)
    table = read_out(tmp_path / "out")
    assert table.num_rows == 84 and stub.request_count == 80
    pairs = set(zip(table.column("program_id").to_pylist(), table.column("id").to_pylist(),
                    strict=True))
    assert len(pairs) == 84
    rows = {(r["program_id"], r["id"]): r for r in table.to_pylist()}
    assert rows["base", "40"]["reward"] is None and "input" in rows["base", "40"]["error"]
    assert rows["other", "41"]["reward"] is None and "label" in rows["other", "41"]["error"]
    assert summary["program_ids"] == ["base", "other"]
    for pid in ("base", "other"):
        assert summary["programs"][pid]["rows"] == 42
        assert summary["programs"][pid]["invalid_rows"] == 2
        assert summary["programs"][pid]["lm_calls"] == 40
        rewards = [rows[pid, str(i)]["reward"] for i in range(40)]
        assert summary["programs"][pid]["reward"] == pytest.approx(sum(rewards) / 40)
    assert summary["reward"] == summary["programs"]["base"]["reward"]


class Outage:
    """A stub handler failing (HTTP 400, not retried) the questions in `failing`, which the
    test empties to heal the server; records the id of every request."""

    def __init__(self, failing: set[int]) -> None:
        self.failing = failing

    def __call__(self, path: str, body: dict) -> StubReply:
        n = int(json.loads(body["messages"][-1]["content"])["q"])
        if n in self.failing:
            return StubReply(status=400)
        return StubReply(json.dumps({"answer": "maybe" if n % 7 == 0 else label(n)}))


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
def test_rerun_retries_exactly_the_failed_rows(tmp_path):
    bad = {3, 4, 17, 40, 41, 42, 77, 99}
    outage = Outage(set(bad))
    with OpenAIStub(handler=outage, latency_s=0.005) as stub:
        program = asyncio.run(build_program(stub))
        data = write_data(tmp_path / "data.parquet", 100)
        out = tmp_path / "out"
        first = run(program, data, out, batch_size=8, concurrency=8, rows_per_file=24)
        assert stub.request_count == 100
        assert not first["complete"] and first["failed_rows"] == len(bad)
        assert first["lm_failures"] == len(bad) and first["missing_rows"] == 0
        assert len(ResultStore(str(out)).part_paths()) >= 3  # failed rows in several files

        outage.failing.clear()  # the server is healthy again
        stub.reset()
        second = run(program, data, out, batch_size=8, concurrency=8, rows_per_file=24)
        assert sorted(int(q) for q in asked(stub)) == sorted(bad)
        assert second["complete"] and second["failed_rows"] == second["lm_failures"] == 0
        assert second["run"]["rows_retried"] == second["run"]["rows_scored"] == len(bad)

        table = read_out(out)  # what a user reading the folder sees: one row per id
        ids = table.column("id").to_pylist()
        assert sorted(ids) == sorted(f"row-{i}" for i in range(100))
        assert table.column("error").null_count == 100
        assert second["rows"] == 100 and second["lm_calls"] == 100

        stub.reset()  # the same rows scored by one clean run: same reward and metrics
        clean = run(program, data, tmp_path / "clean", batch_size=8, concurrency=8)
        assert second["reward"] == pytest.approx(clean["reward"])
        assert second["metrics"] == pytest.approx(clean["metrics"])
        stub.reset()
        third = run(program, data, out)
        assert stub.request_count == 0 and third["run"]["rows_scored"] == 0
        assert third["complete"]


# --- without Ray: everything checked on the driver before any work ----------------------------
@pytest.fixture
def saved(stub, tmp_path):
    program = asyncio.run(build_program(stub))
    program.save(tmp_path / "program.json")
    return str(tmp_path / "program.json")


def test_missing_data_file(saved, tmp_path):
    with pytest.raises(DataError, match=r"Data not found: .*nope\.parquet"):
        run(saved, str(tmp_path / "nope.parquet"), tmp_path / "out")


def test_missing_input_column(saved, tmp_path):
    data = write_data(tmp_path / "data.parquet", 3)
    from synaray.engines.ray.bulk_evaluate import bulk_evaluate

    with pytest.raises(DataError, match=r"missing input column\(s\) 'q'; the columns are"):
        bulk_evaluate(saved, data, tmp_path / "out", verbose=False)
    with pytest.raises(DataError, match=r"missing input column\(s\) 'quest' \(for field 'q'\)"):
        bulk_evaluate(saved, data, tmp_path / "out", input_fields={"q": "quest"})


def test_missing_label_column(saved, tmp_path):
    pq.write_table(pa.table({"id": ["a"], "question": ["1"]}), tmp_path / "d.parquet")
    with pytest.raises(DataError, match="no column for any output field"):
        run(saved, str(tmp_path / "d.parquet"), tmp_path / "out")


def test_unknown_field_in_mapping(saved, tmp_path):
    data = write_data(tmp_path / "data.parquet", 3)
    with pytest.raises(ConfigError, match=r"output has no field \['label'\]"):
        run(saved, data, tmp_path / "out", output_fields={"label": "answer"})


def test_missing_id_column_and_repeated_ids(saved, tmp_path):
    data = write_data(tmp_path / "data.parquet", 3)
    with pytest.raises(DataError, match="no id column 'key'"):
        run(saved, data, tmp_path / "out", id_field="key")
    pq.write_table(pa.table({"id": ["a", "b", "a"], "question": ["1", "2", "3"],
                             "answer": ["x", "y", "z"]}), tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"must be unique; 1 repeat .*'a'"):
        run(saved, str(tmp_path / "dup.parquet"), tmp_path / "out")


def test_bad_or_missing_program_file(tmp_path):
    data = write_data(tmp_path / "data.parquet", 3)
    with pytest.raises(CheckpointError, match="Program file not found"):
        run(str(tmp_path / "missing.json"), data, tmp_path / "out")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        run(str(tmp_path / "bad.json"), data, tmp_path / "out")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(CheckpointError, match="not a saved synaray program"):
        run(str(tmp_path / "other.json"), data, tmp_path / "out")


def test_uncompiled_program_needs_a_reward(stub, tmp_path):
    program = asyncio.run(build_program(stub))
    program.compiled = False
    program._reward = None
    data = write_data(tmp_path / "data.parquet", 3)
    with pytest.raises(ConfigError, match="has no reward"):
        run(program, data, tmp_path / "out")


def test_out_holding_other_results_is_refused(saved, stub, tmp_path):
    data = write_data(tmp_path / "data.parquet", 3)
    other = write_data(tmp_path / "other.parquet", 3, start=10)
    store = ResultStore(str(tmp_path / "out"))
    store.write_json("manifest.json", {"format": "synaray.bulk_evaluate", "data": other})
    with pytest.raises(ConfigError, match="holds results of another evaluation"):
        run(saved, data, tmp_path / "out")


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"concurrency": -1},
                                    {"num_workers": (3, 1)}, {"rows_per_file": 1.5},
                                    {"flush_every_s": 0}, {"worker_num_cpus": 0}])
def test_bad_settings(saved, tmp_path, kwargs):
    data = write_data(tmp_path / "data.parquet", 3)
    with pytest.raises(ConfigError, match="Invalid value for argument"):
        run(saved, data, tmp_path / "out", **kwargs)


def test_result_store_commits_whole_files_and_reads_done_ids(tmp_path):
    store = ResultStore(str(tmp_path))
    rows = {c.name: [None, None] for c in RESULT_SCHEMA}
    rows.update(id=["a", "b"], program_id=["p", "q"], reward=[1.0, 0.0])
    store.write_part(pa.table(rows, schema=RESULT_SCHEMA), {"metric_states": {}})
    assert [p.rsplit("/", 1)[1].startswith("part-") for p in store.part_paths()] == [True]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    done = store.done_ids(["p", "q", "r"])
    assert {k: v.to_pylist() for k, v in done.items()} == {"p": ["a"], "q": ["b"], "r": []}


def part_rows(ids: list[str], failed: set[str]) -> pa.Table:
    rows = {c.name: [None] * len(ids) for c in RESULT_SCHEMA}
    rows.update(id=ids, program_id=["p"] * len(ids), reward=[0.0 if i in failed else 1.0
                                                               for i in ids],
                error=["boom" if i in failed else None for i in ids])
    return pa.table(rows, schema=RESULT_SCHEMA)


def test_retire_failed_takes_failed_rows_out_and_keeps_the_others(tmp_path):
    store = ResultStore(str(tmp_path))
    invalid = part_rows(["x"], set()).set_column(3, "reward", pa.array([None], pa.float64()))
    store.write_part(pa.concat_tables([part_rows(["a", "b", "c"], {"b"}), invalid]),
                     {"metric_states": {"p": {"acc": 2}}, "row_states": {"p": {"b": "{}"}}})
    store.write_part(part_rows(["d"], {"d"}), {"metric_states": {}, "row_states": {}})
    store.write_part(part_rows(["e", "f"], set()), {"metric_states": {}, "row_states": {}})
    untouched = store.part_paths()[-1]
    assert store.retire_failed() == 2
    assert sorted(store.done_ids(["p"])["p"].to_pylist()) == ["a", "c", "e", "f", "x"]
    assert untouched in store.part_paths() and len(store.part_paths()) == 2
    table, meta = next((t, m) for t, m in store.iter_parts(["id"]) if "replaces" in m)
    assert table.column("id").to_pylist() == ["a", "c", "x"]  # the invalid row stays
    assert meta["metric_states"] == {"p": {"acc": 2}} and meta["row_states"] == {}
    assert store.retire_failed() == 0  # nothing left to retire


def test_retire_failed_finishes_an_interrupted_rewrite_and_old_files(tmp_path):
    store = ResultStore(str(tmp_path))
    old = store.write_part(part_rows(["a", "b"], {"b"}), {"metric_states": {}})  # no row_states
    kept = store.write_part(part_rows(["c", "d"], {"d"}), {"metric_states": {},
                                                            "row_states": {"p": {"d": "{}"}}})
    # a run killed between writing the rewrite of `kept` and deleting `kept`
    store.write_part(part_rows(["c"], set()), {"metric_states": {}, "row_states": {},
                                                "replaces": kept})
    assert store.retire_failed() == 2  # `old` is retired whole: its states are merged
    assert store.done_ids(["p"])["p"].to_pylist() == ["c"]
    assert not [p for p in store.part_paths() if p.endswith((old, kept))]


def test_top_k_of_a_run_folder(stub, tmp_path):
    from synaray.optimizers.protocol import candidate_id

    program = asyncio.run(build_program(stub))
    program.save(tmp_path / "run" / "best_program.json")
    states = [{"generator": {"instructions": t, "examples": []}} for t in ("a", "b", "c")]
    ids = [candidate_id(s) for s in states]
    table = [[ids[0], "val", "e1", 0.5, None, None], [ids[0], "val", "e2", 0.5, None, None],
             [ids[1], "val", "e1", 1.0, None, None], [ids[1], "val", "e2", 0.0, None, None],
             [ids[2], "val", "e1", 1.0, None, None], [ids[2], "train", "e2", 1.0, None, None]]
    state = {"table": table, "best_id": ids[1],
             "candidates": [{"id": i, "state": s} for i, s in zip(ids, states, strict=True)]}
    (tmp_path / "run" / "optimizer_state.json").write_text(json.dumps(state))
    assert [c for c, _ in rank_candidates(state)] == [ids[1], ids[0]]  # ids[2]: half done
    specs = resolve_programs(str(tmp_path / "run"), top_k=3)
    assert [s.program_id for s in specs] == [ids[1], ids[0]]
    assert specs[0].payload["state"] == states[1]
    with pytest.raises(ConfigError, match="`top_k` needs a run folder"):
        resolve_programs(str(tmp_path / "run" / "best_program.json"), top_k=2)
    with pytest.raises(ConfigError, match="must be unique"):
        resolve_programs([program, program])


def test_scorer_marks_rows_that_do_not_fit(stub, tmp_path):
    from synaray.engines.bulk_io import DataInfo
    from synaray.engines.ray.bulk_evaluate import BulkScorer, ColumnMap

    program = asyncio.run(build_program(stub))
    info = DataInfo("mem", [], ["id", "question", "answer"], 2)
    columns = ColumnMap.build(program, info, "id", {"q": "question"}, None)
    scorer = BulkScorer([{"program_id": "p", "payload": program.to_payload(),
                          "reward": synaray.saving.serialize_object(program.reward),
                          "metrics": []}], columns, max_concurrency=4)
    out = asyncio.run(scorer(pa.table({"id": ["a", "b"], "question": ["2", None],
                                       "answer": ["yes", "no"]})))
    rows = out.to_pylist()
    assert rows[0]["reward"] == 1.0 and rows[0]["prediction"] == '{"answer": "yes"}'
    assert rows[1]["reward"] is None and "input does not fit" in rows[1]["error"]
    assert pc.sum(out.column("lm_calls")).as_py() == 1


def test_empty_data_writes_an_empty_summary(saved, tmp_path):
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "question": pa.array([], pa.string()),
                             "answer": pa.array([], pa.string())}), tmp_path / "d.parquet")
    summary = run(saved, str(tmp_path / "d.parquet"), tmp_path / "out")
    assert summary["input_rows"] == summary["rows"] == 0 and summary["complete"]
    assert summary["reward"] is None and summary["run"]["rows_scored"] == 0


def _scorer(program, batch_size):
    from synaray.engines.bulk_io import DataInfo
    from synaray.engines.ray.bulk_evaluate import BulkScorer, ColumnMap

    info = DataInfo("mem", [], ["id", "question", "answer"], 0)
    columns = ColumnMap.build(program, info, "id", {"q": "question"}, None)
    spec = {"program_id": "p", "payload": program.to_payload(),
            "reward": synaray.saving.serialize_object(program.reward),
            "metrics": [synaray.saving.serialize_object(m) for m in program.metrics]}
    return BulkScorer([spec], columns, max_concurrency=8, batch_size=batch_size)


def _merged(program, rows) -> dict:
    """What the driver makes of the rows' metric states: succeeded rows' merged."""
    from synaray.engines.bulk_io import failed_mask

    table = pa.Table.from_pylist(rows)
    failed = failed_mask(table).to_pylist()
    metrics = [type(m).from_config(m.get_config()) for m in program.metrics]
    for row, is_failed in zip(rows, failed, strict=True):
        if row["metric_state"] is not None and not is_failed:
            state = json.loads(row["metric_state"])
            for metric in metrics:
                metric.merge_state(state[metric.name])
    return {m.name: m.result() for m in metrics}


async def test_a_block_scores_like_its_rows_one_by_one(stub, monkeypatch):
    """Per-block work (batches of a block run together, one metric state for the rows that
    succeeded) gives what scoring each row alone gives: predictions, rewards, errors, usage,
    and, once the driver merges them, the same metrics."""
    from synaray.engines.ray import bulk_evaluate

    program = await build_program(stub)
    n = 26  # the stub fails 0, 11, 22 (HTTP 400) and answers 7, 14, 21 wrongly
    block = pa.table({"id": [f"r{i}" for i in range(n)], "question": [str(i) for i in range(n)],
                      "answer": [label(i) for i in range(n)]})
    sizes: list[int] = []
    evaluate = bulk_evaluate.evaluate_request

    async def recording(pool, reward, request, rows, semaphore):
        sizes.append(len(rows))
        return await evaluate(pool, reward, request, rows, semaphore)

    monkeypatch.setattr(bulk_evaluate, "evaluate_request", recording)
    whole = (await _scorer(program, batch_size=4)(block)).to_pylist()
    assert sorted(sizes) == [2] + [4] * 6  # batches of `batch_size` rows, one request each
    one_scorer = _scorer(program, batch_size=4)
    alone = [(await one_scorer(block.slice(i, 1))).to_pylist()[0] for i in range(n)]

    columns = [c for c in whole[0] if c != "metric_state"]
    assert [{c: r[c] for c in columns} for r in whole] == \
        [{c: r[c] for c in columns} for r in alone]
    failed = {f"r{i}" for i in (0, 11, 22)}
    assert {r["id"] for r in whole if r["error"]} == failed
    # a failed row keeps its own state (a rerun takes it out); the others share one
    assert all(r["metric_state"] for r in whole if r["id"] in failed)
    assert sum(r["metric_state"] is not None for r in whole if r["id"] not in failed) == 1
    merged = _merged(program, whole)
    assert merged == _merged(program, alone)
    assert merged["accuracy"] == pytest.approx(20 / 23)  # 23 answered, 3 of them wrong


def test_blocks_hold_whole_batches_of_about_the_rows_in_flight():
    from synaray.engines.ray.bulk_evaluate import _pool_sizes, block_rows

    assert block_rows(128, 256) == 256 and block_rows(64, 16) == 64
    assert block_rows(8, 20) == 24 and block_rows(1, 64) == 64
    assert _pool_sizes((2, 4), rows=300, rows_per_block=256) == (2, 2)
    assert _pool_sizes((2, 4), rows=200, rows_per_block=256) == (1, 1)


def test_ray_data_context_is_set_while_scoring_and_restored_after():
    from ray.data import DataContext

    from synaray.engines.ray.bulk_evaluate import _data_context

    context = DataContext.get_current()
    before = (context.enable_progress_bars, context.memory_usage_poll_interval_s)
    with _data_context():
        assert context.memory_usage_poll_interval_s is None  # no poller thread per task
        assert context.enable_progress_bars is False
    assert (context.enable_progress_bars, context.memory_usage_poll_interval_s) == before
