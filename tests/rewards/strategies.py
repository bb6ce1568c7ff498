"""Hypothesis strategies shared by reward and metric tests: JSON records with text fields."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["FIELDS", "WORDS", "json_records", "leaf_values", "texts"]

# Words that exercise SQuAD normalisation: case, punctuation, articles, digits.
WORDS = ["The", "the", "a", "An", "cat", "Cat.", "sat", "down", "dog,", "ran!", "Paris",
         "4", "five", "élan", "x-ray", "(note)"]
# Field names with distinct base forms (a mask on one never matches another).
FIELDS = ["answer", "thinking", "label", "context", "question", "summary"]

texts = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
leaf_values = st.one_of(texts, st.integers(-5, 100), st.booleans(),
                        st.floats(-10, 10, allow_nan=False), st.none())


def json_records(max_depth: int = 2) -> st.SearchStrategy[dict]:
    """Dicts over FIELDS whose values are leaves, lists of leaves, or nested records."""
    values = st.recursive(
        leaf_values,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(FIELDS), children, max_size=3)),
        max_leaves=8,
    )
    return st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)
