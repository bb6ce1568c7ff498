"""fit / evaluate: join a program, an optimizer and an engine; callbacks follow the search.

The search loop itself is `synaray.trainers.search_loop.SearchLoop`, run by the engine
(`Engine.run_search`); `fit` turns its events into callback calls.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from synaray.callbacks import CallbackList, History, ProgressBar
from synaray.data.data_model import to_json_data_model
from synaray.engines import get as get_engine
from synaray.errors import ConfigError, UsageError
from synaray.lm.circuit_breaker import circuit_breaker_from
from synaray.lm.preflight import preflight as run_preflight
from synaray.lm.preflight import preflight_enabled
from synaray.observability.config import fit_callbacks
from synaray.optimizers.protocol import EvalRequest, candidate_id
from synaray.runs.status import ended_state
from synaray.trainers.data_adapter import to_dataset, train_val_datasets
from synaray.trainers.events import CallbackEvents, OptimizerView
from synaray.trainers.search_loop import SearchSpec, metric_logs
from synaray.trainers.stop_conditions import stop_condition_from
from synaray.utils.progress import Progress

__all__ = ["evaluate", "fit"]

EVAL = "eval"


def _check_compiled(program: Any, need_optimizer: bool) -> None:
    if not getattr(program, "compiled", False) or program.reward is None:
        raise UsageError(f"Program {program.name!r} has no reward: call "
                         "program.compile(reward=..., optimizer=..., metrics=[...]) first.")
    if need_optimizer and program.optimizer is None:
        raise UsageError(f"Program {program.name!r} was compiled without an optimizer; fit "
                         "needs one (e.g. optimizer=synaray.optimizers.RandomFewShot()).")


def _callbacks(program: Any, callbacks: list | None, verbose: bool) -> tuple[CallbackList,
                                                                              History]:
    callbacks = list(callbacks or [])
    history = next((c for c in callbacks if isinstance(c, History)), None)
    if history is None:
        history = History()
        callbacks.insert(0, history)
    if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    callbacks.extend(fit_callbacks(callbacks))  # MlflowLogger after enable_observability()
    return CallbackList(callbacks, program, None), history


def _run_info(engine: Any, train: Any, val: Any, batch_size: int, epochs: int,
              resume: bool) -> dict:
    """What `on_train_begin` receives: the fit's settings (logged by MlflowLogger)."""
    info = {"engine": type(engine).__name__, "batch_size": batch_size, "epochs": epochs,
            "train_size": len(train), "val_size": len(val) if val is not None else 0,
            "resume": resume}
    for key in ("run_name", "storage"):
        if getattr(engine, key, None):
            info[key] = str(getattr(engine, key))
    info["engine_config"] = {k: getattr(engine, k) for k in ("num_evaluators", "max_concurrency")
                             if isinstance(getattr(engine, k, None), int)}
    return info


def _stop_conditions(callbacks: CallbackList) -> list:
    """The stop conditions of the callbacks that steer the search (EarlyStopping...)."""
    return [c for cb in callbacks.callbacks if (c := cb.stop_condition()) is not None]


async def fit(program: Any, x: Any = None, y: Any = None, epochs: int = 1, batch_size: int = 32,
              validation_split: float = 0.0, validation_data: Any = None,
              callbacks: list | None = None, engine: Any = "local", verbose: bool = True,
              resume: bool = False, preflight: bool | None = None,
              circuit_breaker: Any = None, stop_conditions: list | None = None) -> History:
    """Optimize `program` against its compiled reward; see `Program.fit`.

    The search runs where the engine runs it (`Engine.run_search`): in this process on
    LocalEngine, in the run's optimizer actor on RayEngine; this function feeds its events
    to the callbacks. An engine named by a string is closed at the end; an engine object
    stays usable (close it with `async with` / `close()`).
    """
    _check_compiled(program, need_optimizer=True)
    breaker = circuit_breaker_from(circuit_breaker)
    if epochs < 1:
        raise ConfigError(f"Invalid value for argument `epochs`. Received: {epochs}. Expected "
                          "an integer >= 1.")
    if batch_size < 1:
        raise ConfigError(f"Invalid value for argument `batch_size`. Received: {batch_size}. "
                          "Expected an integer >= 1.")
    extra = [stop_condition_from(c) for c in stop_conditions or []]
    train, val = train_val_datasets(x, y, validation_split, validation_data)
    if preflight_enabled(preflight):  # before anything is started, spent or written
        await run_preflight([program, program.reward, program.optimizer])
    named = engine is None or isinstance(engine, str)
    engine = get_engine(engine)
    cbs, history = _callbacks(program, callbacks, verbose)
    saved = cbs.restore()
    program.stop_training = False
    await engine.start(program, program.reward, {"train": train, "val": val or train})
    optimizer = None
    program.optimizer.choose_loop(engine.prefers_steady_state)  # steady_state="auto" picks
    try:
        optimizer = await engine.host_optimizer(
            program.optimizer, program.get_state(), train, val, batch_size=batch_size,
            epochs=epochs, saved=saved["optimizer"] if saved else None, resume=resume)
        if saved is not None and saved.get("program_state"):
            program.set_state(saved["program_state"])
        cbs.set_optimizer(optimizer)
        search = SearchSpec(conditions=_stop_conditions(cbs) + extra, breaker=breaker,
                            info=_run_info(engine, train, val, batch_size, epochs, resume))
        events = CallbackEvents(program, cbs,
                                view=optimizer if isinstance(optimizer, OptimizerView) else None)
        await engine.run_search(optimizer, search, events)
        events.raise_if_failed()
    except BaseException as exc:
        if optimizer is not None:  # "stopped" for Ctrl-C, else "failed", where the run lives
            await engine.stop_search(*ended_state(exc))
        cbs.on_train_error(exc)
        raise
    finally:
        await (engine.close() if named else engine.finish())
    return history


async def evaluate(program: Any, x: Any = None, y: Any = None, batch_size: int = 32,
                   engine: Any = "local", verbose: bool = True,
                   return_predictions: bool = False) -> dict:
    """Score the program's current state on (x, y) with its reward and metrics."""
    _check_compiled(program, need_optimizer=False)
    dataset = to_dataset(x, y)
    if dataset.y is None:
        raise ConfigError("evaluate needs labels: pass `y` (or a labelled Dataset as `x`).")
    if batch_size < 1:
        raise ConfigError(f"Invalid value for argument `batch_size`. Received: {batch_size}. "
                          "Expected an integer >= 1.")
    named = engine is None or isinstance(engine, str)
    engine = get_engine(engine)
    if named:
        engine.max_concurrency = batch_size  # an engine object keeps its own setting
    state = program.get_state()
    request = EvalRequest(candidate_id(state), state, tuple(dataset.ids), EVAL)
    bar = Progress(len(dataset), desc=f"evaluate {program.name}", verbose=verbose)

    def progress(finished: list) -> None:
        bar.update(len(finished), lm_calls=sum(r.lm_calls for r in finished),
                   failures=sum(1 for r in finished if r.error))

    await engine.start(program, program.reward, {EVAL: dataset})
    try:
        started = time.monotonic()
        results = await engine.evaluate([request], on_results=progress)
        states = engine.metric_states.get((request.candidate_id, EVAL))
    finally:
        await (engine.close() if named else engine.finish())
    bar.close()
    rewards = np.asarray([r.reward for r in results], dtype=float)
    preds = [None if r.y_pred is None else to_json_data_model(r.y_pred) for r in results]
    logs = {"reward": float(rewards.mean()) if rewards.size else 0.0}
    logs.update(await metric_logs(list(program.metrics or []), dataset, preds, "", states))
    logs.update({"lm_calls": sum(r.lm_calls for r in results),
                 "lm_failures": sum(r.lm_failures for r in results),
                 "failures": sum(1 for r in results if r.error),
                 "time_s": time.monotonic() - started})
    if return_predictions:
        logs["predictions"] = results
    return logs
