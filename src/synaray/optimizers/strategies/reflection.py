"""Reflection: an LM proposes new instructions for one module after seeing its failures.

`FailureLog` keeps, per candidate, the training examples of the current minibatch on which
it fell short (reward below 1.0, or an error) together with their traces. `failure_cases`
turns those notes into cases (the module's inputs, its output, the expected program output
and the reward); `reflection_messages` and `crossover_messages` write the prompts;
`propose_instructions` makes one structured call (`{"instructions": str}`) and returns the
text (None on any failure, never an exception) with the trace of the call, so the caller
can bill its usage to the budget.

Example:
    >>> cases = [{"inputs": {"q": "3"}, "outputs": {"a": "yes"}, "expected": {"a": "no"},
    ...           "reward": 0.0, "error": None}]
    >>> messages = reflection_messages("gen", None, cases)
    >>> [m["role"] for m in messages], "Expected program output" in messages[1]["content"]
    (['system', 'user'], True)
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from typing import Any

import numpy as np

from synaray.modules.prompts import DEFAULT_INSTRUCTIONS
from synaray.optimizers.budget import Budget, BudgetSpent
from synaray.optimizers.protocol import EvalResult
from synaray.optimizers.strategies.proposal import PROPOSALS_AT_ONCE, Proposal
from synaray.utils.tracing import Trace, trace_scope

__all__ = ["INSTRUCTIONS_SCHEMA", "FailureLog", "calls_left", "crossover_messages",
           "failure_cases", "propose_all", "propose_instructions", "reflection_messages",
           "sample_cases"]

INSTRUCTIONS_SCHEMA: dict = {
    "type": "object",
    "properties": {"instructions": {
        "type": "string", "description": "The complete new instructions for the step."}},
    "required": ["instructions"],
    "additionalProperties": False,
}
_CLIP = 1200

_REFLECT_SYSTEM = (
    "You improve the instructions of one step of a language-model program. The step "
    "receives its instructions as a system prompt. You are shown cases where the program "
    "fell short: what the step received, what it answered, the expected output of the "
    "whole program and the reward (1.0 is perfect). Work out what the step gets wrong and "
    "write new instructions that fix it while staying general: they must work for other "
    "inputs of the same kind. Keep what is right in the current instructions. Answer with a "
    'JSON object {"instructions": "..."} and nothing else.')

_CROSSOVER_SYSTEM = (
    "You merge two versions of the instructions of one step of a language-model program. "
    "Both versions do well on different examples. Write one set of instructions that keeps "
    "the strengths of both and stays general. Cases where the program fell short are shown "
    'for context. Answer with a JSON object {"instructions": "..."} and nothing else.')


class FailureLog:
    """Failing training examples of the current minibatch, per candidate (JSON state)."""

    def __init__(self) -> None:
        self._notes: dict[str, list[dict]] = {}

    def add(self, result: EvalResult) -> bool:
        """Note `result` if it fell short (reward < 1.0 or an error); True if noted."""
        if result.reward >= 1.0 and result.error is None:
            return False
        self._notes.setdefault(result.candidate_id, []).append(
            {"example_id": result.example_id, "reward": float(result.reward),
             "error": result.error, "y_pred": copy.deepcopy(result.y_pred),
             "trace": copy.deepcopy(result.trace)})
        return True

    def notes(self, candidate_id: str) -> list[dict]:
        return list(self._notes.get(candidate_id, []))

    def drop(self, candidate_id: str) -> None:
        """Forget the notes of one candidate (a steady-state member starting a new step)."""
        self._notes.pop(candidate_id, None)

    def clear(self) -> None:
        self._notes = {}

    def to_json(self) -> dict:
        return copy.deepcopy(self._notes)

    @classmethod
    def from_json(cls, data: dict) -> FailureLog:
        log = cls()
        log._notes = copy.deepcopy(data)
        return log


def failure_cases(notes: list[dict], module: str, rows: list[tuple[Any, Any]]) -> list[dict]:
    """Cases for a prompt from failure notes and their dataset rows `(x, y)`, in order.

    The module's own inputs and outputs come from the trace; when the module did not run on
    an example (an upstream step failed), the program's inputs and prediction stand in.
    """
    cases = []
    for note, (x, y) in zip(notes, rows, strict=True):
        record = next((r for r in note["trace"] if r.get("module") == module), None)
        cases.append({
            "inputs": record["inputs"] if record else _json_of(x),
            "outputs": record["outputs"] if record else note.get("y_pred"),
            "expected": _json_of(y), "reward": note["reward"], "error": note["error"]})
    return cases


def sample_cases(notes: list[dict], module: str, dataset: Any, limit: int,
                 rng: np.random.Generator) -> list[dict]:
    """Up to `limit` failure cases for `module`, drawn without replacement, in note order."""
    if len(notes) > limit:
        picks = rng.choice(len(notes), size=limit, replace=False)
        notes = [notes[int(i)] for i in sorted(picks)]
    return failure_cases(notes, module, dataset.fetch([n["example_id"] for n in notes]))


def calls_left(budget: Budget, spent: BudgetSpent, reserved: int = 0) -> bool:
    """False once the budget's LM calls, tokens or cost are spent: no more proposals.

    `reserved`: calls already planned and not yet booked (proposals made together).
    """
    return not any(limit is not None and used >= limit for limit, used in (
        (budget.max_lm_calls, spent.lm_calls + reserved), (budget.max_tokens, spent.tokens),
        (budget.max_cost, spent.cost)))


def _json_of(value: Any) -> Any:
    return value.get_json() if hasattr(value, "get_json") else value


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _CLIP else text[:_CLIP] + " ...(clipped)"


def _render_cases(cases: list[dict]) -> str:
    blocks = []
    for n, case in enumerate(cases, 1):
        lines = [f"Case {n} (reward {case['reward']:.3g})",
                 f"Step inputs: {_show(case['inputs'])}",
                 f"Step output: {_show(case['outputs'])}",
                 f"Expected program output: {_show(case['expected'])}"]
        if case.get("error"):
            lines.append(f"Error: {_show(case['error'])}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def reflection_messages(module: str, instructions: str | None,
                        cases: list[dict]) -> list[dict]:
    """The prompt asking for better instructions for `module` given its failing cases."""
    user = (f"Step: {module}\nCurrent instructions:\n<<<\n"
            f"{instructions or DEFAULT_INSTRUCTIONS}\n>>>\n\n{_render_cases(cases)}\n\n"
            "Write the improved instructions.")
    return [{"role": "system", "content": _REFLECT_SYSTEM}, {"role": "user", "content": user}]


def crossover_messages(module: str, instructions_a: str | None, instructions_b: str | None,
                       cases: list[dict]) -> list[dict]:
    """The prompt asking to merge two parents' instructions for `module`."""
    user = (f"Step: {module}\nVersion A:\n<<<\n{instructions_a or DEFAULT_INSTRUCTIONS}\n>>>\n"
            f"Version B:\n<<<\n{instructions_b or DEFAULT_INSTRUCTIONS}\n>>>\n\n"
            f"{_render_cases(cases) if cases else 'No failing cases on this minibatch.'}\n\n"
            "Write the merged instructions.")
    return [{"role": "system", "content": _CROSSOVER_SYSTEM},
            {"role": "user", "content": user}]


async def propose_instructions(language_model: Any, messages: list[dict],
                               cases: list[dict] | None = None, shown: str | None = None,
                               **kwargs: Any) -> tuple[str | None, str | None, Trace]:
    """One structured call. Returns `(instructions or None, error or None, trace)`.

    A failed call, an invalid answer or an exception raised by the model all give None
    and the reason; the trace holds the call's usage either way. `cases` are the failing
    cases the prompt shows: a proposal that copies them is rejected (`degenerate_instructions`).
    `shown` is the text of other examples the prompt shows (grounded proposals), checked
    the same way.
    """
    with trace_scope() as trace:
        try:
            result = await language_model(messages, schema=INSTRUCTIONS_SCHEMA, **kwargs)
        except Exception as exc:  # a broken proposal must not end a search; it is counted
            return None, f"{type(exc).__name__}: {exc}", trace
    if not getattr(result, "ok", False):
        return None, f"{getattr(result, 'error_type', None)}: {getattr(result, 'error', '')}", \
            trace
    answer = getattr(result, "json", None)
    text = answer.get("instructions") if isinstance(answer, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None, "LMOutputError: the answer has no `instructions` text", trace
    shown_text = "\n\n".join(t for t in (_render_cases(cases or []), shown or "") if t)
    problem = degenerate_instructions(text, shown=shown_text)
    if problem:
        return None, f"LMOutputError: rejected proposal ({problem})", trace
    return text.strip(), None, trace


async def propose_all(language_model: Any, proposals: list[Proposal],
                      limit: int = PROPOSALS_AT_ONCE) -> list[tuple[str | None, str | None,
                                                                       Trace]]:
    """`propose_instructions` for each proposal, at most `limit` at once; answers in the
    order of `proposals` (whatever order the calls complete in), so a seeded search that
    makes its proposals together stays reproducible."""
    gate = asyncio.Semaphore(max(1, limit))

    async def one(proposal: Proposal) -> tuple[str | None, str | None, Trace]:
        async with gate:
            return await propose_instructions(language_model, proposal.messages,
                                              proposal.cases, shown=proposal.shown,
                                              **proposal.kwargs)

    return list(await asyncio.gather(*(one(p) for p in proposals)))


_SCHEMA_ECHOES = {
    INSTRUCTIONS_SCHEMA["properties"]["instructions"]["description"].strip().lower(),
    "instructions", "the instructions", "...",
}


def degenerate_instructions(text: str, shown: str = "") -> str | None:
    """Why a proposed instruction is unusable, or None.

    A small model sometimes echoes the schema's field description ("The complete new
    instructions for the step."), answers with a few characters, or copies a passage of the
    failing cases it was shown (a paragraph of an example's input) instead of writing
    instructions; such a child would waste a population slot and, on a small validation
    set, can even win by luck. `shown` is the text of the cases in the prompt: a proposal
    at least half of whose 6-word runs occur in it is a copy.

    Example:
        >>> degenerate_instructions("The complete new instructions for the step.")
        'it repeats the field description'
        >>> degenerate_instructions("Answer with one of: plausible, implausible.") is None
        True
        >>> case = "Step inputs: the Rhine flows through North Rhine-Westphalia and its banks"
        >>> degenerate_instructions("The Rhine flows through North Rhine-Westphalia and "
        ...                         "its banks.", shown=case)
        'it copies the cases it was shown'
    """
    cleaned = text.strip().strip("\"'<>").strip()
    if cleaned.lower() in _SCHEMA_ECHOES:
        return "it repeats the field description"
    if len(cleaned) < 12 or len(cleaned.split()) < 3:
        return f"too short: {cleaned!r}"
    proposed = _word_runs(cleaned)
    if shown and proposed and len(proposed & _word_runs(shown)) >= len(proposed) / 2:
        return "it copies the cases it was shown"
    return None


_RUN = 6
_WORD = re.compile(r"\w+")


def _word_runs(text: str) -> set[tuple[str, ...]]:
    """The runs of `_RUN` consecutive words of `text` (lower case, punctuation dropped)."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + _RUN]) for i in range(len(words) - _RUN + 1)}
