"""Helpers shared by rewards and metrics: input standardization, masks, fields, tokens.

Everything here is pure and deterministic: the same inputs give the same outputs in any
process, which is what lets rewards and metric states computed on different shards agree.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

from synaray.data import JsonDataModel, to_json_data_model
from synaray.errors import ConfigError, DataError
from synaray.utils.naming import to_snake_case

__all__ = [
    "Masks",
    "best_alternatives",
    "check_value",
    "fbeta_from_counts",
    "flatten_fields",
    "is_batch",
    "leaf_text",
    "mask_sample",
    "mean_of",
    "normalize_answer",
    "parse_number",
    "standardize_masks",
    "standardize_pairs",
    "to_snake_case",
    "token_f1",
    "token_overlap",
    "tokenize",
]

Masks = dict[str, Any]


def _standardize_mask(argument: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"Invalid value for argument `{argument}`. Received: {value!r}. "
                          "Expected a list of field names or None.")
    return list(value)


def _standardize_pattern(argument: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"Invalid value for argument `{argument}`. Received: {value!r}. "
                          "Expected a regular expression string or None.")
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"Invalid value for argument `{argument}`. Received: {value!r}, "
                          f"which is not a valid regular expression ({exc}).") from exc
    return value


def standardize_masks(in_mask: Any = None, out_mask: Any = None, in_mask_pattern: Any = None,
                      out_mask_pattern: Any = None) -> Masks:
    """Checked mask arguments as the dict `JsonDataModel.masked` takes (a str becomes [str]).

    Raises:
        ConfigError: for a mask that is not a list of strings or a pattern that is not a regex.
    """
    return {
        "in_mask": _standardize_mask("in_mask", in_mask),
        "out_mask": _standardize_mask("out_mask", out_mask),
        "in_mask_pattern": _standardize_pattern("in_mask_pattern", in_mask_pattern),
        "out_mask_pattern": _standardize_pattern("out_mask_pattern", out_mask_pattern),
    }


def is_batch(value: Any) -> bool:
    """True for a list, a tuple or a 1-D numpy array (such as `Program.predict`'s output)."""
    if isinstance(value, (list, tuple)):
        return True
    return getattr(value, "ndim", None) == 1 and hasattr(value, "tolist")


def standardize_pairs(y_true: Any, y_pred: Any, owner: str) -> tuple[list[Any], list[Any]]:
    """One pair or two equal-length lists of samples -> two lists (not yet converted).

    Raises:
        DataError: when one side is a list and the other is not, or the lengths differ.
    """
    if is_batch(y_true) != is_batch(y_pred):
        raise DataError(
            f"{owner}: `y_true` and `y_pred` must both be single samples or both lists of "
            f"samples. Received y_true of type {type(y_true).__name__} and y_pred of type "
            f"{type(y_pred).__name__}."
        )
    if not is_batch(y_true):
        return [y_true], [y_pred]
    if len(y_true) != len(y_pred):
        raise DataError(
            f"{owner}: `y_true` has {len(y_true)} samples but `y_pred` has {len(y_pred)}; "
            "expected one prediction per sample."
        )
    return list(y_true), list(y_pred)


def mask_sample(value: Any, masks: Masks, owner: str, side: str,
                index: int) -> JsonDataModel | None:
    """Convert one sample to a `JsonDataModel` (None stays None) and apply the masks."""
    try:
        sample = to_json_data_model(value)
    except DataError as exc:
        raise DataError(f"{owner}: {side} sample {index}: {exc}") from exc
    if sample is None or not any(v for v in masks.values()):
        return sample
    return sample.masked(**masks)


def flatten_fields(data: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values of nested JSON keyed by path: `{"a": {"b": 1}, "c": [2]}` -> `a.b`, `c[0]`.

    Empty objects and lists have no leaves and so no fields.

    Example:
        >>> flatten_fields({"answer": "4", "steps": [{"text": "2+2"}]})
        {'answer': '4', 'steps[0].text': '2+2'}
    """
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten_fields(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, (list, tuple)):
        out = {}
        for i, value in enumerate(data):
            out.update(flatten_fields(value, f"{prefix}[{i}]"))
        return out
    return {prefix: data}


def leaf_text(value: Any) -> str:
    """The text of a leaf value: strings as they are, None as "", other values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, drop punctuation, drop a/an/the, fold spaces.

    Example:
        >>> normalize_answer("The  Cat sat.")
        'cat sat'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """SQuAD tokens: the words of the normalised text."""
    return normalize_answer(text).split()


def token_overlap(y_true_text: str, y_pred_text: str) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of SQuAD tokens, as a multiset."""
    true_tokens, pred_tokens = tokenize(y_true_text), tokenize(y_pred_text)
    common = sum((Counter(true_tokens) & Counter(pred_tokens)).values())
    return common, len(pred_tokens) - common, len(true_tokens) - common


def fbeta_from_counts(tp: int, fp: int, fn: int, beta: float = 1.0) -> float:
    """F-beta from counts, `(1+b²)tp / ((1+b²)tp + b²fn + fp)`; 1.0 when all counts are 0.

    Computed from the counts (not from rounded precision and recall) so that it is exact
    where the count ratio is: 2 tp / (2 tp + fp + fn) for beta = 1.
    """
    if tp == 0 and fp == 0 and fn == 0:
        return 1.0
    b2 = beta * beta
    if b2 == 1.0:
        return 2 * tp / (2 * tp + fp + fn)
    return (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp)


def token_f1(y_true_text: str, y_pred_text: str) -> float:
    """SQuAD token F1 of two texts; 1.0 when both have no tokens.

    Example:
        >>> token_f1("cat sat down", "The cat sat.")
        0.8
    """
    return fbeta_from_counts(*token_overlap(y_true_text, y_pred_text))


def best_alternatives(y_true: Any, y_pred: Any,
                      score: Callable[[str, str], float] | None = None) -> Any:
    """`y_true` with each list of accepted answers replaced by the one closest to `y_pred`.

    Where the ground truth holds a non-empty list of strings and the prediction, at the same
    place, a single string, the list is the set of accepted answers (as SQuAD's several
    reference answers, or DSPy's list-valued `answer`): it is replaced by the alternative of
    highest `score(alternative, prediction)` (token F1 by default; the first on ties).
    Objects are walked key by key and lists of equal length element by element; everything
    else is kept as it is. A score computed on the result is thus the maximum over the
    accepted answers.

    Example:
        >>> best_alternatives({"answer": ["Denver Broncos", "Broncos"]}, {"answer": "the Broncos"})
        {'answer': 'Broncos'}
    """
    if score is None:
        score = token_f1
    if isinstance(y_true, dict) and isinstance(y_pred, dict):
        return {k: best_alternatives(v, y_pred[k], score) if k in y_pred else v
                for k, v in y_true.items()}
    if isinstance(y_true, list) and isinstance(y_pred, str):
        if y_true and all(isinstance(v, str) for v in y_true):
            return max(y_true, key=lambda v: score(v, y_pred))
        return y_true
    if isinstance(y_true, list) and isinstance(y_pred, list) and len(y_true) == len(y_pred):
        return [best_alternatives(t, p, score) for t, p in zip(y_true, y_pred, strict=True)]
    return y_true


def check_value(value: Any, owner: str, index: int) -> float:
    """A reward or metric value as a finite float, or a DataError naming owner and index."""
    if not isinstance(value, Real):
        raise DataError(
            f"{owner} returned {value!r} (of type {type(value).__name__}) for sample {index}; "
            "expected a number."
        )
    result = float(value)
    if not math.isfinite(result):
        raise DataError(f"{owner} returned {result} for sample {index}; expected a finite "
                        "number (not NaN or infinity).")
    return result


def mean_of(values: Sequence[float]) -> float:
    """Order-independent mean (math.fsum is correctly rounded); 0.0 for no values."""
    return math.fsum(values) / len(values) if values else 0.0


def parse_number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for anything else (bools too).

    Example:
        >>> parse_number("4"), parse_number(2.5), parse_number(True), parse_number("n/a")
        (4.0, 2.5, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, Real) and math.isfinite(float(value)):
        return float(value)
    return None
