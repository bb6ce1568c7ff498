"""enable_observability: each fit is an MLflow run on a real tracking server (loopback)."""

import itertools
import sys

import pytest

import synaray
from synaray import callbacks
from synaray.errors import ConfigError, MissingExtraError

from .tasks import make_data, make_program

mlflow = pytest.importorskip("mlflow")


def _only_run(config):
    client = mlflow.MlflowClient(config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def _series(client, run_id, key):
    return [(m.step, m.value) for m in
            sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


async def test_fit_is_a_run_with_params_metrics_per_generation_and_the_best_program(
        observability, tmp_path):
    xs, ys = make_data(30)
    program = await make_program(seed=3)
    history = await program.fit(xs, ys, epochs=2, batch_size=6, validation_split=0.2,
                                verbose=False)
    client, run = _only_run(observability)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["optimizer"] == "PopulationSearch"
    assert params["optimizer.population_size"] == "4"
    assert params["optimizer.language_model"] == "fake/writer"
    assert (params["batch_size"], params["epochs"], params["engine"]) == ("6", "2", "LocalEngine")
    assert (params["train_size"], params["val_size"]) == ("24", "6")
    assert params["models"] == "fake/model, fake/writer"
    assert params["reward"] == "exact_match" and params["metrics"] == '["accuracy"]'

    generations = history.generations
    assert len(generations) == 8  # 2 epochs x ceil(24 / 6)
    for key in ("reward", "population_reward"):
        assert _series(client, run.info.run_id, key) == [
            (g["generation"], pytest.approx(g[key])) for g in generations]
    spent = program.optimizer.spent
    # evaluations + reflections so far, per generation and again at each epoch end (the
    # epoch's validation spends calls after the last generation)
    calls = _series(client, run.info.run_id, "lm_calls")
    assert sorted({s for s, _ in calls}) == list(range(1, 9))
    assert all(a <= b for (_, a), (_, b) in itertools.pairwise(calls))
    at_batch_end = {}
    for step, value in calls:
        at_batch_end.setdefault(step, value)
    assert all(at_batch_end[g["generation"]] >= g["lm_calls"] for g in generations)
    assert calls[-1][1] == spent.lm_calls
    assert _series(client, run.info.run_id, "lm_failures")[-1][1] == spent.lm_failures > 0
    assert _series(client, run.info.run_id, "tokens")[-1][1] == spent.tokens
    assert [v for _, v in _series(client, run.info.run_id, "cache_hits")] == [0.0] * 8
    assert _series(client, run.info.run_id, "val_reward") == [
        (step, pytest.approx(value)) for step, value in
        zip(history.history["generation"], history.history["val_reward"], strict=True)]
    assert _series(client, run.info.run_id, "val_accuracy")[-1][1] == pytest.approx(
        history.history["val_accuracy"][-1])
    assert run.data.tags["synaray.best_candidate"] == program.optimizer.best().id
    assert run.data.tags["synaray.stop_reason"].startswith("epochs completed")

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"best_program.json", "history.json"} <= names
    local = client.download_artifacts(run.info.run_id, "best_program.json", str(tmp_path))
    assert synaray.Program.load(local).get_state() == program.get_state()


async def test_lm_calls_become_spans_of_the_fit_run(observability):
    lm = synaray.LanguageModel("openai/gpt-4o-mini", mock_response='{"answer": "yes"}',
                               cache=False, structured_output="json_object")
    from .tasks import Label, Number

    inputs = synaray.Input(data_model=Number)
    outputs = await synaray.Generator(data_model=Label, language_model=lm)(inputs)
    program = synaray.Program(inputs=inputs, outputs=outputs, name="always_yes")
    program.compile(reward="exact_match", optimizer=synaray.optimizers.RandomFewShot(),
                    metrics=[])
    xs, ys = make_data(6)
    await program.fit(xs, ys, epochs=1, batch_size=6, verbose=False)
    _, run = _only_run(observability)
    calls = program.optimizer.spent.lm_calls
    assert calls > 0
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(locations=[run.info.experiment_id],
                                  run_id=run.info.run_id, return_type="list")
    assert len(traces) == calls
    span = traces[0].data.spans[0]
    assert span.name == "LanguageModel openai/gpt-4o-mini" and span.span_type == "LLM"
    assert span.attributes["model"] == "openai/gpt-4o-mini"
    assert span.outputs["json"] == {"answer": "yes"} and span.outputs["ok"] is True
    assert span.inputs["messages"][-1]["role"] == "user"


class Explode(callbacks.Callback):
    def on_batch_end(self, step, logs=None):
        if step == 2:
            raise RuntimeError("boom at generation 2")


async def test_a_fit_that_raises_ends_its_run_as_failed(observability):
    xs, ys = make_data(24)
    program = await make_program()
    with pytest.raises(RuntimeError, match="boom"):
        await program.fit(xs, ys, epochs=1, batch_size=6, callbacks=[Explode()], verbose=False)
    client, run = _only_run(observability)
    assert run.info.status == "FAILED"
    assert run.data.tags["synaray.error"] == "RuntimeError: boom at generation 2"
    # the user callback raised before the logger (added last) saw generation 2
    assert [s for s, _ in _series(client, run.info.run_id, "reward")] == [1]


async def test_an_unreachable_server_is_a_clear_error_before_any_lm_call():
    from .conftest import _free_port

    uri = f"http://127.0.0.1:{_free_port()}"
    synaray.enable_observability(tracking_uri=uri, experiment_name="nowhere")
    try:
        program = await make_program()
        xs, ys = make_data(12)
        with pytest.raises(ConfigError, match=r"tracking server .* is not reachable"):
            await program.fit(xs, ys, epochs=1, batch_size=6, verbose=False)
        assert program.optimizer.spent.lm_calls == 0
    finally:
        synaray.observability.disable_observability()


def test_without_mlflow_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'synaray\[mlflow\]'"):
        synaray.enable_observability(tracking_uri="http://127.0.0.1:5000",
                                     experiment_name="x")
    assert synaray.observability.get_observability() is None


@pytest.mark.parametrize("kwargs, argument", [
    ({"tracking_uri": 5}, "tracking_uri"), ({"experiment_name": " "}, "experiment_name")])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ConfigError, match=f"argument `{argument}`"):
        synaray.enable_observability(**kwargs)


def test_importing_synaray_observability_loads_no_mlflow():
    import subprocess

    code = ("import sys, synaray; synaray.enable_observability; "
            "import synaray.observability.status, synaray.reports; "
            "print('mlflow' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.ray
async def test_a_ray_engine_fit_is_logged_the_same_way(observability, ray_cluster, tmp_path):
    from synaray.engines.ray import RayEngine

    xs, ys = make_data(24)
    program = await make_program(seed=2)
    engine = RayEngine(num_evaluators=2, storage=str(tmp_path), run_name="mlflow-ray")
    history = await program.fit(xs, ys, epochs=1, batch_size=6, validation_split=0.25,
                                engine=engine, verbose=False)
    client, run = _only_run(observability)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "mlflow-ray"
    assert run.data.params["engine"] == "RayEngine"
    assert run.data.params["engine.num_evaluators"] == "2"
    assert run.data.tags["synaray.run_name"] == "mlflow-ray"
    assert run.data.tags["synaray.storage"] == str(tmp_path)
    assert _series(client, run.info.run_id, "reward") == [
        (g["generation"], pytest.approx(g["reward"])) for g in history.generations]
    assert not client.get_metric_history(run.info.run_id, "cache_hits")  # not known on Ray
    status = engine.remote_optimizer.spent
    assert _series(client, run.info.run_id, "lm_calls")[-1][1] == status.lm_calls
