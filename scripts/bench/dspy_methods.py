"""DSPy's side of the comparison bench: BootstrapFewShotWithRandomSearch, MIPROv2 and GEPA.

Needs the `bench` extra (dspy, gepa) in its own virtualenv: see scripts/bench/vs_baselines.py.

DSPy's default adapters (ChatAdapter's `[[ ## answer ## ]]` markers, JSONAdapter) cannot
parse SmolLM2-135M's answers: it rarely writes the markers. The task program therefore runs
through `PlainQAAdapter`, a plain question/answer adapter: the system message is the
signature's instructions, each demo is a user turn "Question: ...\\nAnswer:" (one line per
input field when there are several) and an assistant turn with the bare answer, and the
reply is parsed as raw text (its first line, an "Answer:" prefix dropped; for a closed answer
set, the first label found in the reply). Every other signature (MIPROv2's proposer, a
reflection prompt) goes to DSPy's ChatAdapter unchanged.

LM calls are counted with a DSPy callback (`on_lm_end`) over every LM of the run, task model
and proposer alike (MIPROv2 copies its prompt model, so one LM's `history` would miss
calls); the DSPy cache is off, so every call reached the server.
"""

from __future__ import annotations

import re
import time
from typing import Any

import dspy
from bench_tasks import BenchTask
from dspy.utils.callback import BaseCallback

__all__ = ["DSPY_METHODS", "CallCounter", "PlainQAAdapter", "run_dspy_method"]

DSPY_METHODS = ["dspy-bfrs", "dspy-mipro", "dspy-gepa"]
# The demo limits of the first comparison (8 labelled + 4 bootstrapped at most).
MAX_LABELED, MAX_BOOTSTRAPPED = 8, 4
_PREFIX = re.compile(r"^\s*(answer|a)\s*[:\-]\s*", re.IGNORECASE)
_MARKER = re.compile(r"^\[\[ ## \w+ ## \]\]$")


class CallCounter(BaseCallback):
    """Counts LM calls that returned (with or without an exception), over every LM."""

    def __init__(self) -> None:
        self.calls = 0

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        self.calls += 1


class PlainQAAdapter(dspy.ChatAdapter):
    """"Question: ...\\nAnswer:" prompts and raw-text answers for the task signature only.

    Args:
        input_fields: the task's input field names.
        output_field: the task's output field name.
        labels: the closed answer set, if any: the first label found in a reply is the answer.
    """

    def __init__(self, input_fields: list[str], output_field: str,
                 labels: list[str] | None = None) -> None:
        super().__init__()
        self.input_fields = list(input_fields)
        self.output_field = output_field
        self.labels = sorted(labels or [], key=len, reverse=True)

    def _is_task(self, signature: Any) -> bool:
        return (list(signature.input_fields) == self.input_fields
                and list(signature.output_fields) == [self.output_field])

    def _question(self, values: Any) -> str:
        if len(self.input_fields) == 1:
            return f"Question: {values[self.input_fields[0]]}\nAnswer:"
        lines = [f"{name.replace('_', ' ').capitalize()}: {values[name]}"
                 for name in self.input_fields]
        return "\n".join([*lines, "Answer:"])

    def format(self, signature: Any, demos: list[Any], inputs: dict[str, Any]) -> list[dict]:
        if not self._is_task(signature):
            return super().format(signature, demos, inputs)
        messages = [{"role": "system", "content": signature.instructions}]
        for demo in demos:
            try:
                answer = demo[self.output_field]
                question = self._question(demo)
            except (KeyError, TypeError):
                continue  # a demo without all fields is skipped
            if answer is None:
                continue
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": str(answer)}]
        messages.append({"role": "user", "content": self._question(inputs)})
        return messages

    def parse(self, signature: Any, completion: str) -> dict[str, Any]:
        if not self._is_task(signature):
            try:
                return super().parse(signature, completion)
            except Exception:
                if len(signature.output_fields) != 1:
                    raise
                # a proposer's one text field (an instruction): the reply's raw text
                return {next(iter(signature.output_fields)): _raw_text(completion)}
        return {self.output_field: self.parse_answer(completion)}

    def parse_answer(self, completion: str) -> str:
        lines = [line for line in (completion or "").strip().splitlines() if line.strip()]
        text = _PREFIX.sub("", lines[0]).strip() if lines else ""
        if self.labels:
            lowered = (completion or "").lower()
            found = [(lowered.find(label.lower()), label) for label in self.labels
                     if label.lower() in lowered]
            if found:
                return min(found)[1]
        return text


def _raw_text(completion: str) -> str:
    """A reply without ChatAdapter's field markers and code fences."""
    lines = [line for line in (completion or "").splitlines()
             if not _MARKER.match(line.strip()) and not line.strip().startswith("```")]
    return "\n".join(lines).strip()


def _examples(task: BenchTask, rows: list[dict]) -> list[Any]:
    out = []
    for row in rows:
        example = dspy.Example(**row["x"], **{task.output_field: _first(row["y"])},
                               _y=row["y"])
        out.append(example.with_inputs(*task.input_fields))
    return out


def _first(y: dict) -> Any:
    """The answer a demo shows: the first accepted answer when the truth lists several."""
    value = next(iter(y.values()))
    return value[0] if isinstance(value, list) and value else value


def _program(task: BenchTask) -> Any:
    fields = {name: (str, dspy.InputField()) for name in task.input_fields}
    fields[task.output_field] = (str, dspy.OutputField())
    return dspy.Predict(dspy.make_signature(fields, task.instructions))


def _predicted(task: BenchTask, pred: Any) -> dict | None:
    value = getattr(pred, task.output_field, None)
    return None if value is None else {task.output_field: str(value)}


def _metric(task: BenchTask):
    def metric(gold: Any, pred: Any, trace: Any = None) -> float:
        return task.score(gold._y, _predicted(task, pred))
    return metric


def _feedback_metric(task: BenchTask):
    def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None,
               pred_trace: Any = None) -> Any:
        predicted = _predicted(task, pred)
        score = task.score(gold._y, predicted)
        shown = None if predicted is None else predicted[task.output_field]
        verdict = "correct" if score >= 1.0 else f"wrong (score {score:.2f})"
        feedback = (f"The answer {shown!r} is {verdict}. The expected answer is "
                    f"{_first(gold._y)!r}.")
        return dspy.Prediction(score=score, feedback=feedback)
    return metric


def _evaluate(task: BenchTask, program: Any, rows: list[dict], threads: int) -> float:
    evaluator = dspy.Evaluate(devset=_examples(task, rows), metric=_metric(task),
                              num_threads=threads, display_progress=False,
                              display_table=False, max_errors=len(rows) + 1)
    return float(evaluator(program).score) / 100.0


def _bfrs(task: BenchTask, budget: int, threads: int, seed: int, proposer: Any,
          adapter: Any) -> Any:
    """BootstrapFewShotWithRandomSearch: as many demo sets as the budget scores on val."""
    n_val, n_train = len(task.val), len(task.train)
    per_program = n_val + min(n_train, 2 * MAX_BOOTSTRAPPED)
    programs = max(4, budget // per_program)  # 3 fixed ones (zero-shot, labelled, unshuffled)
    return dspy.BootstrapFewShotWithRandomSearch(
        metric=_metric(task), max_bootstrapped_demos=MAX_BOOTSTRAPPED,
        max_labeled_demos=MAX_LABELED, num_candidate_programs=programs - 3,
        num_threads=threads, max_errors=10 ** 6), {}


def _mipro(task: BenchTask, budget: int, threads: int, seed: int, proposer: Any,
          adapter: Any) -> Any:
    """MIPROv2 with explicit candidates and trials sized to the budget (auto=None)."""
    n_val = len(task.val)
    minibatch = min(10, n_val)
    candidates = max(2, budget // 50)
    per_trial = minibatch + n_val / 5  # a full evaluation every 5 trials
    trials = max(3, int((budget - 12 * candidates) / per_trial))
    optimizer = dspy.MIPROv2(metric=_metric(task), prompt_model=proposer,
                             max_bootstrapped_demos=MAX_BOOTSTRAPPED,
                             max_labeled_demos=MAX_LABELED, auto=None,
                             num_candidates=candidates, num_threads=threads, seed=seed,
                             max_errors=10 ** 6, verbose=False)
    return optimizer, {"num_trials": trials, "minibatch_size": minibatch,
                       "minibatch_full_eval_steps": 5}


def _gepa(task: BenchTask, budget: int, threads: int, seed: int, proposer: Any,
          adapter: Any) -> Any:
    """GEPA: program runs capped by max_metric_calls; reflection calls come on top (~15%)."""
    from dspy.teleprompt.gepa.instruction_proposal import InstructionProposer

    # its proposer's default JSONAdapter cannot parse this model either: the plain adapter
    # (ChatAdapter, with the reply's raw text as the new instruction when that fails)
    optimizer = dspy.GEPA(metric=_feedback_metric(task), max_metric_calls=int(budget * 0.85),
                          reflection_lm=proposer, num_threads=threads, seed=seed,
                          track_stats=False,
                          instruction_proposer=InstructionProposer(adapter=adapter))
    return optimizer, {}


_MAKERS = {"dspy-bfrs": _bfrs, "dspy-mipro": _mipro, "dspy-gepa": _gepa}


def run_dspy_method(method: str, task: BenchTask, budget: int, api_base: str, model: str,
                    concurrency: int, seed: int, zero_shot: dict | None = None) -> dict:
    """Zero-shot test, compile, optimized test, with LM calls counted per phase."""
    if method not in _MAKERS:
        raise SystemExit(f"error: unknown DSPy method {method!r}; expected one of "
                         f"{DSPY_METHODS}")
    counter = CallCounter()
    common = {"api_base": api_base, "api_key": "sk-local", "cache": False, "temperature": 0.0,
              "num_retries": 2}
    # the task answers one line (what the adapter parses): stop there, as synaray's
    # grammar stops at the end of its JSON object
    lm = dspy.LM(model, max_tokens=128, stop=["\n"], **common)
    proposer = dspy.LM(model, max_tokens=512, **common)
    adapter = PlainQAAdapter(task.input_fields, task.output_field, task.labels)
    dspy.configure(lm=lm, adapter=adapter, callbacks=[counter])
    student = _program(task)
    if zero_shot is None:
        before = counter.calls
        zero_shot = {"score": _evaluate(task, student, task.test, concurrency),
                     "lm_calls": counter.calls - before}
    optimizer, compile_kwargs = _MAKERS[method](task, budget, concurrency, seed, proposer,
                                                adapter)
    before, started = counter.calls, time.monotonic()
    compiled = optimizer.compile(student, trainset=_examples(task, task.train),
                                 valset=_examples(task, task.val), **compile_kwargs)
    search_s, search_calls = time.monotonic() - started, counter.calls - before
    optimized = _evaluate(task, compiled, task.test, concurrency)
    predictors = compiled.predictors()
    return {"method": method, "zero_shot": zero_shot["score"], "optimized": optimized,
            "search_lm_calls": search_calls, "search_s": search_s,
            "demos": sum(len(p.demos) for p in predictors),
            "instructions": [p.signature.instructions for p in predictors],
            "_zero_shot": zero_shot}
