"""Which format a data file has: `jsonl` or `parquet`, as declared or from its suffix.

Used by the config checks, the data loading and the program built from the data (this
module imports none of them).

Example:
    >>> data_format("train.parquet", None)
    'parquet'
    >>> data_format("rows.txt", "jsonl")
    'jsonl'
"""

from __future__ import annotations

from pathlib import Path

from synaray.errors import ConfigError

__all__ = ["data_format"]

_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
             ".pq": "parquet"}


def data_format(uri: str, declared: str | None, source: str = "<config>",
                path: str = "data.format") -> str:
    """`jsonl` or `parquet`: as declared, or from the file suffix (a folder is Parquet)."""
    if declared is not None:
        return declared
    suffix = Path(uri.partition("?")[0].rstrip("/")).suffix.lower()  # no URI query
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if "://" not in uri and Path(uri).is_dir():
        return "parquet"
    raise ConfigError(f"{source}: {path}: expected 'jsonl' or 'parquet': the format of "
                      f"{uri!r} cannot be told from its suffix (known suffixes: "
                      f"{', '.join(sorted(_SUFFIXES))}).")
