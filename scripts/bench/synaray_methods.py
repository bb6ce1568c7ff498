"""synaray's side of the comparison bench: a one-Generator program, its optimizers, a budget.

Each method builds the same program (the task's instruction, its input and output data
models; a `Literal` answer is constrained to its set by the Generator's structured output),
scores it zero-shot on the test rows, optimizes it on the train rows with the validation rows
under `Budget(max_lm_calls=budget)`, and scores the optimized program on the same test rows.
Search LM calls are synaray's own usage counters (`optimizer.spent.lm_calls`: every program
run of the search plus the optimizer's own proposals; cache off, so every call reached the
server).

Methods:
- `synaray-auto`: `PopulationSearch(lm_calls=budget)`, synaray's default way to spend a
  budget of LM calls: the preset plans the search from the data and races the candidates
  on validation (`synaray.optimizers.validation_race`).
- `synaray`: `PopulationSearch` with the main job's settings (population 4, minibatch 20,
  5–8 demos, reflection 0.1, one leader promoted per generation): what `scripts/main_job.py`
  runs, stopped by the budget instead of an epoch count.
- `synaray-surrogate`: `synaray-auto` with `surrogate=True` (MIPROv2-style proposals of
  untried instruction x demo-set combinations; an option).
- `synaray-rfs`: `RandomFewShot` (population 4, 5–8 demos), the same budget.
"""

from __future__ import annotations

import time
from typing import Any

from bench_tasks import BenchTask

import synaray
from synaray.data.datasets import Dataset, rows_to_dataset
from synaray.lm.local.names import LOCAL_TIMEOUT_S

__all__ = ["SYNARAY_METHODS", "run_synaray_method", "to_dataset"]

# The epoch count never binds: the LM-call budget stops every synaray search.
_EPOCHS = 1000


def to_dataset(task: BenchTask, rows: list[dict]) -> Dataset:
    flat = [{"id": r["id"], **r["x"], **r["y"]} for r in rows]
    return rows_to_dataset(flat, task.input_data_model, task.y_data_model,
                           source=f"bench task {task.name}")


def _optimizer(method: str, budget: int, lm: Any, seed: int) -> tuple[Any, int]:
    """(optimizer, minibatch size) of a method."""
    opts = synaray.optimizers
    limit = {"max_lm_calls": budget}
    shots = {"nb_min_examples": 5, "nb_max_examples": 8}
    if method == "synaray":
        return opts.PopulationSearch(language_model=lm, population_size=4,
                                     reflection_probability=0.1, promote_k=1, seed=seed,
                                     budget=limit, **shots), 20
    if method == "synaray-auto":
        return opts.PopulationSearch(language_model=lm, lm_calls=budget, seed=seed), 20
    if method == "synaray-surrogate":
        return opts.PopulationSearch(language_model=lm, lm_calls=budget, seed=seed,
                                     surrogate=True), 20
    if method == "synaray-rfs":
        return opts.RandomFewShot(population_size=4, seed=seed, budget=limit, **shots), 20
    raise SystemExit(f"error: unknown synaray method {method!r}; expected one of "
                     f"{SYNARAY_METHODS}")


SYNARAY_METHODS = ["synaray-auto", "synaray", "synaray-surrogate", "synaray-rfs"]


async def _build(task: BenchTask, lm: Any) -> Any:
    inputs = synaray.Input(data_model=task.input_data_model)
    outputs = await synaray.Generator(data_model=task.output_data_model, language_model=lm,
                                      instructions=task.instructions)(inputs)
    return synaray.Program(inputs=inputs, outputs=outputs, name=task.name,
                           description=task.instructions)


async def run_synaray_method(method: str, task: BenchTask, budget: int, api_base: str,
                             model: str, concurrency: int, seed: int,
                             zero_shot: dict | None = None) -> dict:
    """Zero-shot test, search, optimized test. `zero_shot` (a previous result) is reused."""
    lm = synaray.LanguageModel(model=model, api_base=api_base, api_key="sk-local", cache=False,
                               timeout=LOCAL_TIMEOUT_S)
    program = await _build(task, lm)
    optimizer, batch_size = _optimizer(method, budget, lm, seed)
    program.compile(reward=task.reward, optimizer=optimizer)
    engine = synaray.engines.LocalEngine
    test = to_dataset(task, task.test)
    if zero_shot is None:
        zero = await program.evaluate(test, engine=engine(concurrency), verbose=False)
        zero_shot = {"score": float(zero["reward"]), "lm_calls": int(zero["lm_calls"])}
    started = time.monotonic()
    history = await program.fit(to_dataset(task, task.train),
                                validation_data=to_dataset(task, task.val), epochs=_EPOCHS,
                                batch_size=batch_size, engine=engine(concurrency),
                                verbose=False)
    search_s = time.monotonic() - started
    best = await program.evaluate(test, engine=engine(concurrency), verbose=False)
    searched = program.optimizer
    state = program.get_state()
    return {"method": method, "zero_shot": zero_shot["score"],
            "optimized": float(best["reward"]),
            "search_lm_calls": int(searched.spent.lm_calls), "search_s": search_s,
            "generations": len(history.generations), "candidates": len(searched.candidates),
            "stop_reason": searched.stop_reason,
            "val": searched.best_val_reward,
            "demos": sum(len(m.get("examples") or []) for m in state.values()),
            "search": _search_record(searched),
            "_zero_shot": zero_shot}


def _search_record(optimizer: Any) -> list[dict]:
    """Each candidate the search made: how, when, and its scores (train and validation
    means over the examples it was scored on), for reading a run afterwards."""
    table = optimizer.table
    rows = []
    for record in optimizer.lineage:
        cid = record["id"]
        train_ids = table.scored_ids(cid, "train")
        val_ids = table.scored_ids(cid, optimizer.val_split) \
            if optimizer.val_split != "train" else []
        state = optimizer.candidates[cid].state
        rows.append({"id": cid, "generation": record["generation"],
                     "operation": record["operation"], "parents": record["parents"],
                     "demos": sum(len(m.get("examples") or []) for m in state.values()),
                     "train_n": len(train_ids), "train": table.mean(cid, "train", train_ids),
                     "val_n": len(val_ids),
                     "val": table.mean(cid, optimizer.val_split, val_ids),
                     "best": cid == optimizer.best_id})
    return rows
