"""What `LanguageModel` derives from an output schema, computed once per schema.

A call with a schema needs a validating `DataModel` class, the schema as prompt text (for
every mode but `json_schema`), the `max_tokens` sized to it (when "auto") and, in grammar
mode, a GBNF grammar. Each costs a JSON dump
of the schema or more; a `Generator` sends the same schema dict with every call. `memo_for`
keeps them per schema object (by `id`, checked by equality against a private copy, so a
dict edited in place or a new dict at a reused address is never served stale work).

Example:
    >>> schema = {"title": "A", "type": "object", "properties": {"answer": {"type": "string"}},
    ...           "required": ["answer"]}
    >>> memo_for(schema) is memo_for(schema)
    True
    >>> memo_for(schema).prompt
    '{"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}'
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache

from synaray.data.data_model import data_model_from_schema
from synaray.lm.grammar import schema_to_gbnf
from synaray.lm.parsing import prompt_schema
from synaray.lm.token_budget import max_tokens_for_schema

__all__ = ["SchemaMemo", "memo_for"]

_MAX_ENTRIES = 512


@dataclass
class SchemaMemo:
    """The derived forms of one schema (class and grammar are built on first use)."""

    schema: dict
    prompt: str
    _data_model: type | None = field(default=None, repr=False)
    _grammar: str | None = field(default=None, repr=False)
    _max_tokens: int | None = field(default=None, repr=False)

    @property
    def data_model(self) -> type:
        if self._data_model is None:
            self._data_model = data_model_from_schema(self.schema)
        return self._data_model

    @property
    def max_tokens(self) -> int:
        """`token_budget.max_tokens_for_schema` of the schema."""
        if self._max_tokens is None:
            self._max_tokens = max_tokens_for_schema(self.schema)
        return self._max_tokens

    @property
    def grammar(self) -> str:
        if self._grammar is None:
            self._grammar = _gbnf(json.dumps(self.schema))
        return self._grammar


_MEMOS: dict[int, SchemaMemo] = {}


def memo_for(schema: dict) -> SchemaMemo:
    """The memo of `schema`."""
    memo = _MEMOS.get(id(schema))
    if memo is not None and memo.schema == schema:
        return memo
    private = copy.deepcopy(schema)
    memo = SchemaMemo(schema=private, prompt=prompt_schema(private))
    if len(_MEMOS) >= _MAX_ENTRIES:
        _MEMOS.clear()
    _MEMOS[id(schema)] = memo
    return memo


@lru_cache(maxsize=256)
def _gbnf(schema_json: str) -> str:
    # Plain (not canonical) JSON as the key: property order decides the grammar's order.
    return schema_to_gbnf(json.loads(schema_json))
