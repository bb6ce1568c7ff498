"""The search loop object: its event stream, stop conditions, and a restart mid-run."""

import copy

import pytest

from synaray.callbacks import EarlyStopping
from synaray.engines import LocalEngine
from synaray.errors import ConfigError
from synaray.trainers.data_adapter import train_val_datasets
from synaray.trainers.search_loop import SearchLoop, events_up_to
from synaray.trainers.stop_conditions import (
    BudgetLimit,
    EarlyStop,
    TargetReward,
    stop_condition_from,
)

from .conftest import DemoSearch, make_data, make_program


class Died(BaseException):
    """Stands for the process running the loop being killed."""


async def _setup(seed=4):
    xs, ys = make_data(24)
    program = await make_program(seed=seed)
    train, val = train_val_datasets(xs, ys, 0.25, None)
    engine = LocalEngine()
    await engine.start(program, program.reward, {"train": train, "val": val})
    return program, engine, train, val


def _new_optimizer(program, train, val, state=None):
    optimizer = DemoSearch.from_config(program.optimizer.get_config())
    if state is None:
        optimizer.setup(program.get_state(), train, val, batch_size=6, epochs=2)
    else:
        optimizer.load_state_dict(state, train, val)
    return optimizer


def _comparable(events):
    """Events without wall-clock values (the time of an event, the time spent)."""
    out = []
    for event in copy.deepcopy(events):
        event.pop("time", None)
        if event.get("view"):
            event["view"]["spent"].pop("time_s")
        out.append(event)
    return out


async def test_events_in_order_and_a_restart_from_a_checkpoint_continues_them_exactly():
    program, engine, train, val = await _setup()
    reference = SearchLoop(_new_optimizer(program, train, val), engine, val=val,
                           metrics=program.metrics, info={"epochs": 2})
    await reference.run()
    kinds = [e["kind"] for e in reference.events]
    assert kinds[:2] == ["train_begin", "epoch_begin"] and kinds[-1] == "train_end"
    assert kinds.count("epoch_end") == 2 and kinds.count("batch_end") == 6
    assert [e["seq"] for e in reference.events] == list(range(len(kinds)))
    assert "val_accuracy" in reference.events[kinds.index("epoch_end")]["logs"]

    # the same search, "killed" while it emits generation 4's event (after its tell,
    # before its checkpoint), then restarted from the last checkpoint and its stored events
    saved = {}
    optimizer = _new_optimizer(program, train, val)

    def emit(event):
        if event["kind"] == "batch_end" and event["generation"] == 4:
            raise Died()

    def checkpoint():
        saved.update(step=first.step, state=copy.deepcopy(optimizer.state_dict()),
                     events=copy.deepcopy(first.events))

    first = SearchLoop(optimizer, engine, val=val, metrics=program.metrics,
                       info={"epochs": 2}, emit=emit, checkpoint=checkpoint)
    with pytest.raises(Died):
        await first.run()
    assert first.events[-1]["kind"] == "train_error"
    kept = events_up_to(saved["events"], saved["step"])
    assert kept[-1]["kind"] != "train_error" and len(kept) < len(first.events)
    second = SearchLoop(_new_optimizer(program, train, val, saved["state"]), engine, val=val,
                        metrics=program.metrics, info={"epochs": 2}, step=saved["step"],
                        events=kept)
    await second.run()
    assert _comparable(second.events) == _comparable(reference.events)
    await engine.close()


async def test_stop_conditions_end_the_search_where_it_runs(data):
    xs, ys = data
    program = await make_program(seed=1)
    history = await program.fit(xs, ys, epochs=6, batch_size=6, validation_split=0.25,
                                verbose=False, stop_conditions=[TargetReward(0.5)])
    assert len(history.history["val_reward"]) < 6
    assert history.history["val_reward"][-1] >= 0.5
    assert program.optimizer.stop_reason.startswith("target reached: val_reward")

    program = await make_program(seed=1)
    stop = EarlyStopping(monitor="val_reward", patience=0)
    history = await program.fit(xs, ys, epochs=6, batch_size=12, validation_split=0.25,
                                verbose=False, callbacks=[stop])
    assert stop.stopped_epoch is not None
    assert program.optimizer.stop_reason.startswith("early stopping: val_reward")
    assert len(history.history["val_reward"]) == stop.stopped_epoch + 1

    program = await make_program(seed=1)
    await program.fit(xs, ys, epochs=6, batch_size=6, validation_split=0.25, verbose=False,
                      stop_conditions=[BudgetLimit({"max_generations": 2})])
    assert program.optimizer.generation == 2


def test_conditions_round_trip_and_bad_ones_are_named():
    for condition in (EarlyStop("val_accuracy", 2, 0.01, "max"), TargetReward(0.8, "reward"),
                      BudgetLimit({"max_lm_calls": 10})):
        again = stop_condition_from(condition.get_config())
        assert type(again) is type(condition) and again.get_config() == condition.get_config()
    with pytest.raises(ConfigError, match="'type' one of"):
        stop_condition_from({"type": "nope"})
    with pytest.raises(ConfigError, match="patience"):
        EarlyStop(patience=-1)


async def test_an_engine_object_is_reused_and_closed_by_a_context_manager(data):
    xs, ys = data
    program = await make_program(seed=2)
    async with LocalEngine(max_concurrency=4) as engine:
        before = await program.evaluate(xs, ys, engine=engine, verbose=False)
        await program.fit(xs, ys, epochs=1, batch_size=6, verbose=False, engine=engine)
        after = await program.evaluate(xs, ys, engine=engine, verbose=False)
        assert engine.state.value == "unstarted"  # finished, still usable
    assert engine.state.value == "closed"
    assert after["reward"] >= before["reward"]


async def test_both_engines_the_pool_and_optimizers_meet_the_protocols():
    from synaray.engines.ray.dispatch import EvaluatorPool
    from synaray.trainers.events import OptimizerView
    from synaray.trainers.protocols import SearchEngine, SearchOptimizer

    program, engine, train, val = await _setup()
    ray_engine = pytest.importorskip("synaray.engines.ray").RayEngine()
    pool = EvaluatorPool("p", {}, None, {}, {"num_evaluators": 1, "max_concurrency": 1})
    assert all(isinstance(e, SearchEngine) for e in (engine, ray_engine, pool))
    optimizer = _new_optimizer(program, train, val)
    view = OptimizerView()
    assert isinstance(optimizer, SearchOptimizer) and isinstance(view, SearchOptimizer)
    assert not isinstance(object(), SearchOptimizer)
    await engine.close()


def test_a_failed_remote_search_raises_the_same_synaray_error_on_the_driver():
    from synaray.callbacks import CallbackList
    from synaray.errors import LMFailuresError
    from synaray.trainers.events import CallbackEvents, SearchFailed

    def failed(error_type, error):
        events = CallbackEvents(None, CallbackList([], None, None))
        events({"kind": "train_error", "logs": {"error_type": error_type, "error": error}})
        return events

    with pytest.raises(LMFailuresError, match=r"^stopped: all of the first 20"):
        failed("LMFailuresError", "LMFailuresError: stopped: all of the first 20 LM calls "
                                  "failed").raise_if_failed()
    with pytest.raises(SearchFailed, match="KeyError: 'x'"):
        failed("KeyError", "KeyError: 'x'").raise_if_failed()
