"""Metric states are computed where the predictions are made and merged exactly.

`program.evaluate` with LocalEngine or RayEngine (1, 2, 4 evaluators, small chunks, so a
state is the sum of many shard states) gives exactly (==) the metric values of one pass
over all the predictions, and the same merged states (fractions included) on every engine.
"""

from __future__ import annotations

import json

import pytest

import synaray
from synaray.engines import LocalEngine
from synaray.engines.evaluation import merge_metric_states, metric_states
from synaray.saving import register_synaray_serializable
from synaray.testing import FakeLanguageModel


class Question(synaray.DataModel):
    q: str


class Reply(synaray.DataModel):
    answer: str


def truth(n: int) -> str:
    return f"the answer is {n} {'even' if n % 2 == 0 else 'odd'}"


@register_synaray_serializable(package="tests")
def uneven_handler(messages, schema):
    """Right, partly right (token overlap), wrong, or failed (None), depending on n."""
    n = int(json.loads(messages[-1]["content"])["q"])
    if n % 7 == 0:
        return RuntimeError("model down")
    if n % 3 == 0:
        return {"answer": f"an answer was {n + 1}"}
    if n % 4 == 1:
        return {"answer": f"answer is {n}"}
    return {"answer": truth(n)}


def data(n: int = 50):
    return ([Question(q=str(i)) for i in range(n)], [Reply(answer=truth(i)) for i in range(n)])


def metrics():
    return [synaray.metrics.Accuracy(), synaray.metrics.F1Score(),
            synaray.metrics.F1Score(average="macro", name="f1_macro"),
            synaray.metrics.Precision(), synaray.metrics.Recall()]


async def make_program() -> synaray.Program:
    lm = FakeLanguageModel(uneven_handler, jitter_s=0.003, seed=5)
    inputs = synaray.Input(data_model=Question)
    outputs = await synaray.Generator(data_model=Reply, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="uneven")
    program.compile(reward="exact_match", metrics=metrics())
    return program


async def one_pass(logs: dict, ys: list) -> dict:
    """The metrics of one pass over all the predictions, on the driver."""
    preds = [None if r.y_pred is None else synaray.JsonDataModel(json=r.y_pred)
             for r in logs["predictions"]]
    out = {}
    for metric in metrics():
        await metric.update_state(ys, preds)
        out[metric.name] = metric.result()
    return out


async def test_local_engine_metrics_come_from_merged_states():
    xs, ys = data()
    program = await make_program()
    engine = LocalEngine(max_concurrency=8)
    logs = await program.evaluate(xs, ys, verbose=False, return_predictions=True, engine=engine)
    names = [m.name for m in metrics()]
    assert len(engine.metric_states) == 1
    assert {k: logs[k] for k in names} == await one_pass(logs, ys)
    assert 0 < logs["f1_score"] < 1 and logs["accuracy"] < 1  # fractional, with failures


async def test_shard_states_add_up_to_one_pass():
    _, ys = data(30)
    preds = [None if i % 7 == 0 else Reply(answer=truth(i) if i % 3 else "x")
             for i in range(30)]
    whole = await metric_states(metrics(), ys, preds)
    parts = [await metric_states(metrics(), ys[i:i + 4], preds[i:i + 4])
             for i in range(0, 30, 4)]
    assert merge_metric_states(metrics(), *reversed(parts)) == whole


@pytest.mark.ray
@pytest.mark.usefixtures("ray_cluster")
async def test_ray_evaluators_merge_to_the_local_result(tmp_path):
    from synaray.engines.ray import RayEngine

    xs, ys = data()
    program = await make_program()
    local_engine = LocalEngine(max_concurrency=8)
    local = await program.evaluate(xs, ys, verbose=False, engine=local_engine)
    names = [m.name for m in metrics()]
    assert set(next(iter(local_engine.metric_states.values()))) == set(names)
    for n in (1, 2, 4):
        engine = RayEngine(num_evaluators=n, chunk_size=7, storage=str(tmp_path),
                           run_name=f"metrics-{n}")
        remote = await program.evaluate(xs, ys, verbose=False, engine=engine)
        assert engine.metric_states == local_engine.metric_states, n
        assert {k: remote[k] for k in names} == {k: local[k] for k in names}, n
        assert remote["failures"] == local["failures"] > 0
