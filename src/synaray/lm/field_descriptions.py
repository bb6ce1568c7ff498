"""Which field descriptions a prompt shows: those that say more than the field's name.

A description such as "The answer" for a field `answer` adds nothing, and a small model
may copy it into its answer ("The answer" as the answer). The rule: split the field name
and the description into lowercase words (`snake_case`, `camelCase` and punctuation all
separate words; a plural "s" is dropped), remove the stop words below (articles,
prepositions, pronouns and generic words such as "field" or "output"); the description is
redundant when what is left of it is a subset of the name's words.

Example:
    >>> redundant_description("answer", "The answer.")
    True
    >>> redundant_description("final_answer", "the answer to output")
    True
    >>> redundant_description("answer", "The number of objects, written with digits")
    False
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["STOP_WORDS", "redundant_description", "shown_description"]

STOP_WORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "its", "it", "your", "our", "my",
    "to", "of", "for", "in", "on", "at", "by", "with", "from", "as", "and", "or",
    "is", "are", "be", "will", "should", "must", "here", "there",
    "field", "value", "output", "input", "result", "given", "final",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str, drop: frozenset[str] = frozenset()) -> set[str]:
    words = _WORD.findall(_CAMEL.sub(" ", text).lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words if w not in drop}


def redundant_description(name: str, description: Any) -> bool:
    """Whether `description` only restates the field name `name` (see the module doc).

    An empty description, or one of stop words only, is redundant too.
    """
    if not isinstance(description, str):
        return False
    return _words(description, STOP_WORDS) <= _words(name)


def shown_description(name: str, node: Any) -> str | None:
    """The description of field `name` (its schema `node`) that a prompt shows, or None."""
    description = node.get("description") if isinstance(node, dict) else None
    if not isinstance(description, str) or redundant_description(name, description):
        return None
    return description
