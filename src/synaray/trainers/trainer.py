"""fit / evaluate / predict: the loop that joins a program, an optimizer and an engine."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from synaray.callbacks import CallbackList, History, ProgressBar
from synaray.data.data_model import to_json_data_model
from synaray.engines import get as get_engine
from synaray.errors import ConfigError, UsageError
from synaray.lm.circuit_breaker import CircuitBreaker, circuit_breaker_from
from synaray.lm.preflight import preflight as run_preflight
from synaray.lm.preflight import preflight_enabled
from synaray.observability.config import fit_callbacks
from synaray.optimizers.protocol import EvalRequest, candidate_id
from synaray.trainers.data_adapter import to_dataset, train_val_datasets
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


async def _metric_logs(program: Any, dataset: Any, y_preds: list[Any], prefix: str,
                       states: dict | None = None) -> dict:
    """Each metric's result: from `states` (merged by the engine from the states computed
    where the predictions were made) when given, else from one pass over the predictions."""
    logs = {}
    y_true = None
    for metric in program.metrics:
        metric.reset_state()
        if states is not None and metric.name in states:
            metric.set_state(states[metric.name])
        else:
            if y_true is None:
                y_true = [to_json_data_model(y) for _, y in dataset.fetch(dataset.ids)]
            await metric.update_state(y_true, y_preds)
        logs[prefix + metric.name] = metric.result()
    return logs


async def _epoch_logs(program: Any, optimizer: Any, val: Any) -> dict:
    logs = dict(optimizer.history[-1]) if optimizer.history else {}
    logs.pop("epoch", None)
    best = optimizer.best()
    logs["best_candidate"] = best.id
    logs["lm_calls"] = optimizer.spent.lm_calls
    logs["lm_failures"] = optimizer.spent.lm_failures
    if val is not None and program.metrics:
        preds = optimizer.predictions(best.id, "val", list(val.ids))
        if preds is not None:
            preds = [None if p is None else to_json_data_model(p) for p in preds]
            logs.update(await _metric_logs(program, val, preds, "val_"))
    return logs


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


async def fit(program: Any, x: Any = None, y: Any = None, epochs: int = 1, batch_size: int = 32,
              validation_split: float = 0.0, validation_data: Any = None,
              callbacks: list | None = None, engine: Any = "local", verbose: bool = True,
              resume: bool = False, preflight: bool | None = None,
              circuit_breaker: Any = None) -> History:
    """Optimize `program` against its compiled reward; see `Program.fit`."""
    _check_compiled(program, need_optimizer=True)
    breaker = circuit_breaker_from(circuit_breaker)
    if epochs < 1:
        raise ConfigError(f"Invalid value for argument `epochs`. Received: {epochs}. Expected "
                          "an integer >= 1.")
    if batch_size < 1:
        raise ConfigError(f"Invalid value for argument `batch_size`. Received: {batch_size}. "
                          "Expected an integer >= 1.")
    train, val = train_val_datasets(x, y, validation_split, validation_data)
    if preflight_enabled(preflight):  # before anything is started, spent or written
        await run_preflight([program, program.reward, program.optimizer])
    engine = get_engine(engine)
    cbs, history = _callbacks(program, callbacks, verbose)
    saved = cbs.restore()
    program.stop_training = False
    await engine.start(program, program.reward, {"train": train, "val": val or train})
    optimizer = None
    if hasattr(program.optimizer, "choose_loop"):  # steady_state="auto" picks by engine
        program.optimizer.choose_loop(engine)
    try:
        optimizer = await engine.host_optimizer(
            program.optimizer, program.get_state(), train, val, batch_size=batch_size,
            epochs=epochs, saved=saved["optimizer"] if saved else None, resume=resume)
        if saved is not None and saved.get("program_state"):
            program.set_state(saved["program_state"])
        cbs.set_optimizer(optimizer)
        info = _run_info(engine, train, val, batch_size, epochs, resume)
        await _fit_loop(program, optimizer, engine, cbs, val, info, breaker)
    except BaseException as exc:
        _fit_failed(cbs, optimizer, exc)
        raise
    finally:
        await engine.close()
    return history


def _fit_failed(cbs: CallbackList, optimizer: Any, exc: BaseException) -> None:
    """Tell callbacks (and a remote optimizer's status file) that the fit did not finish."""
    if optimizer is not None and hasattr(optimizer, "mark_ended"):
        optimizer.mark_ended("failed", f"{type(exc).__name__}: {exc}")
    cbs.on_train_error(exc)


async def _fit_loop(program: Any, optimizer: Any, engine: Any, cbs: CallbackList,
                    val: Any, info: dict | None = None,
                    breaker: CircuitBreaker | None = None) -> None:
    cbs.on_train_begin(info or {})
    if getattr(optimizer, "steady_state", False) is True:
        from synaray.trainers.steady_fit import steady_fit_loop

        await steady_fit_loop(program, optimizer, engine, cbs, val, breaker, _epoch_logs)
        return
    epoch, epoch_open, generation = None, False, optimizer.generation
    while not optimizer.finished and not program.stop_training:
        # (a steady-state optimizer driven by this loop may end its last epoch before it
        # finishes: no epoch begins past `epochs`, and none ends twice)
        if optimizer.epoch != epoch and optimizer.epoch < getattr(optimizer, "epochs",
                                                                  float("inf")):
            epoch, epoch_open = optimizer.epoch, True
            cbs.on_epoch_begin(epoch)
        started = time.monotonic()
        phase = optimizer.phase
        requests = optimizer.ask()
        results = (await engine.evaluate(requests, on_results=cbs.on_results)
                   if requests else [])
        if breaker is not None:  # before tell: the checkpoint stays the last good step
            breaker.update(results)
        with engine.lm_call_scope():  # the optimizer's proposals share the LM-call bound
            await optimizer.tell(results)
        optimizer.add_time(time.monotonic() - started)
        if phase == "train" and optimizer.generation != generation:
            generation = optimizer.generation
            cbs.on_batch_end(generation, dict(optimizer.history[-1]))
        if epoch_open and (optimizer.epoch != epoch or optimizer.finished):
            epoch_open = False
            program.set_state(optimizer.best().state)
            cbs.on_epoch_end(epoch, await _epoch_logs(program, optimizer, val))
    program.set_state(optimizer.best().state)
    if not optimizer.finished and hasattr(optimizer, "mark_ended"):  # e.g. EarlyStopping
        optimizer.mark_ended("stopped", "stopped by a callback (program.stop_training)")
    cbs.on_train_end({"stop_reason": optimizer.stop_reason})


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
    named = isinstance(engine, str)
    engine = get_engine(engine)
    if named and hasattr(engine, "max_concurrency"):
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
    finally:
        await engine.close()
    bar.close()
    rewards = np.asarray([r.reward for r in results], dtype=float)
    preds = [None if r.y_pred is None else to_json_data_model(r.y_pred) for r in results]
    logs = {"reward": float(rewards.mean()) if rewards.size else 0.0}
    states = getattr(engine, "metric_states", {}).get((request.candidate_id, EVAL))
    logs.update(await _metric_logs(program, dataset, preds, "", states))
    logs.update({"lm_calls": sum(r.lm_calls for r in results),
                 "lm_failures": sum(r.lm_failures for r in results),
                 "failures": sum(1 for r in results if r.error),
                 "time_s": time.monotonic() - started})
    if return_predictions:
        logs["predictions"] = results
    return logs
