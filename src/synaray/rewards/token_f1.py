"""`TokenF1`: SQuAD token F1 per field, averaged over the fields, for each sample."""

from __future__ import annotations

from synaray.data import JsonDataModel
from synaray.rewards.common import best_alternatives, flatten_fields, leaf_text, mean_of, token_f1
from synaray.rewards.reward import Reward

__all__ = ["TokenF1", "token_f1_reward"]


def token_f1_reward(y_true: JsonDataModel | dict, y_pred: JsonDataModel | dict) -> float:
    """Mean over fields of the SQuAD token F1 of each field's text.

    Fields are the leaf paths of the nested JSON of both sides (a field only one side has
    is compared with the empty text). With no field on either side the value is 1.0.
    A list of strings in `y_true` where `y_pred` has one string holds accepted answers: the
    field scores the best of them (the official SQuAD F1; see `best_alternatives`).

    Example:
        >>> token_f1_reward({"answer": "cat sat down"}, {"answer": "The cat sat."})
        0.8
        >>> token_f1_reward({"answer": ["cat sat down", "a cat"]}, {"answer": "The cat"})
        1.0
    """
    pred_json = _json_of(y_pred)
    true_fields = flatten_fields(best_alternatives(_json_of(y_true), pred_json))
    pred_fields = flatten_fields(pred_json)
    paths = sorted(set(true_fields) | set(pred_fields))
    if not paths:
        return 1.0
    return mean_of([token_f1(leaf_text(true_fields.get(p)), leaf_text(pred_fields.get(p)))
                    for p in paths])


def _json_of(value: JsonDataModel | dict) -> dict:
    return value.get_json() if hasattr(value, "get_json") else value


class TokenF1(Reward):
    """Per-sample SQuAD token F1 of the masked fields, averaged over the fields.

    Each text is normalised as in the SQuAD v1.1 evaluation (lower case, punctuation and
    the articles a/an/the removed, whitespace folded) and split into words; F1 counts the
    common words as a multiset. Nested JSON is compared leaf by leaf (`steps[0].text`).
    A ground-truth list of strings facing a predicted string is a set of accepted answers
    and scores its best member, as the official SQuAD evaluation does with its several
    reference answers.
    Two empty texts agree (1.0). This is the per-sample counterpart of the corpus-level
    `synaray.metrics.F1Score`; on a single one-field sample the two give the same value.

    Args:
        name: defaults to "token_f1".
        reduction, in_mask, out_mask, in_mask_pattern, out_mask_pattern: see `Reward`.

    Example:
        >>> import asyncio
        >>> reward = TokenF1(in_mask=["answer"])
        >>> asyncio.run(reward({"answer": "cat sat down"},
        ...                    {"answer": "The cat sat.", "thinking": "..."}))
        0.8
    """

    async def call(self, y_true: JsonDataModel, y_pred: JsonDataModel) -> float:
        return token_f1_reward(y_true, y_pred)
