"""Lenient JSON extraction from model text, and the prompt texts of structured output.

Models wrap JSON in code fences, add a sentence before it, or stop in the middle.
`extract_json` strips fences and takes the first balanced JSON object that parses;
`validate_json` checks it with pydantic. What fails here becomes one repair request
(`repair_messages`) and then, if that fails too, an `LMOutputError`.

Example:
    >>> extract_json('Sure! ```json\\n{"answer": "4"}\\n``` Hope it helps.')
    {'answer': '4'}
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic

from synaray.lm.field_descriptions import redundant_description

__all__ = [
    "LoopGuard",
    "extract_json",
    "looping_unit",
    "prompt_schema",
    "repair_messages",
    "repeating_tail",
    "with_schema_instructions",
]

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_MAX_ERROR_CHARS = 1500


def extract_json(text: str | None) -> dict:
    """The first JSON object found in `text`.

    Raises:
        ValueError: no JSON object could be parsed from `text`.
    """
    if not text or not text.strip():
        raise ValueError("the answer is empty")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        found = _first_object(candidate.strip())
        if found is not None:
            return found
    raise ValueError(f"no JSON object found in the answer: {_clip(text, 300)!r}")


def _first_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    except ValueError:
        pass
    start = text.find("{")
    while start != -1:
        end = _balanced_end(text, start)
        if end is None:
            return None
        try:
            value = json.loads(text[start:end])
            if isinstance(value, dict):
                return value
        except ValueError:
            pass
        start = text.find("{", start + 1)
    return None


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the `}` closing the `{` at `start` (strings and escapes respected)."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def validate_json(data: dict, data_model: type[pydantic.BaseModel]) -> dict:
    """`data` validated by `data_model`, as JSON (raises `pydantic.ValidationError`)."""
    return data_model.model_validate(data).model_dump(mode="json")


def prompt_schema(schema: dict) -> str:
    """The schema as compact JSON for a prompt, with `title` keywords left out, and the
    descriptions that only restate their property's name ("The answer" for `answer`).

    Example:
        >>> prompt_schema({"title": "A", "type": "object", "properties": {
        ...     "answer": {"type": "string", "description": "The answer."}}})
        '{"type": "object", "properties": {"answer": {"type": "string"}}}'
    """
    return json.dumps(_strip_titles(schema), ensure_ascii=False)


def _strip_titles(node: Any, name: str | None = None) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key == "description" and name is not None and redundant_description(name, value):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {k: _strip_titles(v, k) for k, v in value.items()}
            elif key in ("$defs", "definitions") and isinstance(value, dict):
                out[key] = {k: _strip_titles(v) for k, v in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def with_schema_instructions(messages: list[dict], schema: dict,
                             schema_text: str | None = None) -> list[dict]:
    """A copy of `messages` whose system message asks for JSON following `schema`
    (`schema_text`: `prompt_schema(schema)`, when the caller has it already)."""
    text = schema_text if schema_text is not None else prompt_schema(schema)
    note = ("Answer with a single JSON object that follows this JSON schema, and nothing "
            f"else:\n{text}")
    messages = [dict(m) for m in messages]
    if messages and messages[0].get("role") == "system":
        content = messages[0].get("content") or ""
        messages[0]["content"] = f"{content}\n\n{note}" if content else note
    else:
        messages.insert(0, {"role": "system", "content": note})
    return messages


def repair_messages(messages: list[dict], bad_answer: str | None, error: str) -> list[dict]:
    """`messages` plus the bad answer and a request to correct it."""
    return [*messages,
            {"role": "assistant", "content": bad_answer or ""},
            {"role": "user", "content": (
                f"Your answer is not valid: {_clip(error, _MAX_ERROR_CHARS)}\n"
                "Reply again with only the corrected JSON object.")}]


def repeating_tail(text: str | None, min_repeats: int = 3, min_chars: int = 40,
                   max_unit: int = 600) -> str | None:
    """The unit a looping answer repeats at its end, or None.

    An answer loops when it ends with at least `min_repeats` back-to-back copies of one
    substring (of at most `max_unit` characters; the last copy may be cut off, as by
    `max_tokens`), covering at least `min_chars` characters. The shortest such unit is
    returned, as it first appears in the repeated run.

    Example:
        >>> repeating_tail('{"answer": "The answer is: The answer is: The answer is: '
        ...                'The answer is: The answer is: The ans')
        'The answer is: '
        >>> repeating_tail('{"answer": "no no"}') is None
        True
    """
    return looping_unit(text or "", min_repeats, min_chars, max_unit)


#: Thresholds of the check run while an answer streams in (`LoopGuard`): stricter than
#: `repeating_tail`'s, which only judges answers that already failed validation, because a
#: hit here ends an answer that might still have been valid.
STREAM_LOOP_MIN_REPEATS = 4
STREAM_LOOP_MIN_CHARS = 200
STREAM_LOOP_MAX_UNIT = 200
_PROBE_CHARS = 16


def looping_unit(text: str, min_repeats: int = STREAM_LOOP_MIN_REPEATS,
                 min_chars: int = STREAM_LOOP_MIN_CHARS,
                 max_unit: int = STREAM_LOOP_MAX_UNIT) -> str | None:
    """The unit `text` ends by repeating, when that run is at least `min_repeats` copies of
    a unit of at most `max_unit` characters and covers at least `min_chars` characters.

    The same question as `repeating_tail`, answered fast enough to ask it while an answer
    streams in: a period of the tail must move its last 16 characters onto an earlier
    occurrence of them, so only the few earlier occurrences (found by `str.rfind`) are
    tried; for most text there is none and the check ends there.

    Example:
        >>> looping_unit('{"answer": "' + "The answer is: " * 20)
        'The answer is: '
        >>> looping_unit(", ".join(f"item {i}" for i in range(60))) is None
        True
    """
    n = len(text)
    if n < max(min_chars, _PROBE_CHARS + 1):
        return None
    probe = text[n - _PROBE_CHARS:]
    lowest = max(0, n - _PROBE_CHARS - max_unit)
    pos = text.rfind(probe, lowest, n - 1)
    while pos != -1:
        period = n - _PROBE_CHARS - pos
        span = max(min_chars, min_repeats * period)
        if span <= n and text[n - span + period:] == text[n - span:n - period]:
            start = n - span
            while start > 0 and text[start - 1] == text[start - 1 + period]:
                start -= 1
            return text[start:start + period]
        pos = text.rfind(probe, lowest, pos + _PROBE_CHARS - 1)
    return None


class LoopGuard:
    """Watches an answer as it streams in and says when it loops (`looping_unit`).

    `feed` takes each new piece of text and returns the repeated unit once the answer's
    tail is a loop (else None). The check runs at most once per `every` new characters, on
    the last `window` characters only, so a long answer costs a few microseconds per check.

    Example:
        >>> guard = LoopGuard()
        >>> pieces = ['{"answer": "'] + ["The answer is: "] * 30
        >>> hit = next(h for h in map(guard.feed, pieces) if h)  # stops at the first hit
        >>> hit, guard.chars < 15 * 30
        ('The answer is: ', True)
    """

    def __init__(self, every: int = 24,
                 window: int = STREAM_LOOP_MAX_UNIT * STREAM_LOOP_MIN_REPEATS + 400) -> None:
        self.every = every
        self.window = window
        self.chars = 0
        self._pieces: list[str] = []
        self._tail = ""
        self._unchecked = 0

    def feed(self, piece: str) -> str | None:
        """Add `piece`; the repeated unit if the answer now loops, else None."""
        if not piece:
            return None
        self._pieces.append(piece)
        self.chars += len(piece)
        self._unchecked += len(piece)
        if self._unchecked < self.every or self.chars < STREAM_LOOP_MIN_CHARS:
            return None
        self._unchecked = 0
        self._tail = (self._tail + "".join(self._pieces))[-self.window:]
        self._pieces.clear()
        return looping_unit(self._tail)


def describe_validation_error(exc: Exception) -> str:
    """A short, model-readable description of a parse or validation error."""
    if isinstance(exc, pydantic.ValidationError):
        parts = []
        for err in exc.errors()[:10]:
            where = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
            parts.append(f"{where}: {err.get('msg')}")
        return "; ".join(parts)
    return str(exc)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
