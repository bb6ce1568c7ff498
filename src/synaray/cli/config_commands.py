"""`synaray config` (the config reference, JSON Schema, or a checked config) and `synaray init`.

    synaray config --schema > run-config.schema.json
    synaray config examples/qa_data_only.yaml --set training.epochs=2
    synaray init questions.jsonl --input question --input options --output target

`init` reads a JSONL or Parquet file, reports its columns and their types, picks the
answer's label set when the output column holds few distinct values (or the `--choices`
column), the splits (a test and a validation share when there is one file), and writes a
run config that needs no Python module (`data.inputs`/`data.outputs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from synaray.cli.main import command
from synaray.errors import ConfigError

__all__ = ["config_command", "init_command", "inspect_columns", "suggest_config"]

MAX_AUTO_LABELS = 20
DEFAULT_MODEL = "local/smollm2-135m"


# --- config ---------------------------------------------------------------------------------
def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", nargs="?", default=None,
                        help="a run config to check and print with its defaults filled in")
    parser.add_argument("--schema", action="store_true",
                        help="print the JSON Schema of a run config")
    parser.add_argument("--reference", action="store_true",
                        help="print the Markdown reference of every key (docs/config.md)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a key of CONFIG (repeatable)")


@command("config", arguments=_config_arguments,
         help="Print the run config JSON Schema (--schema) or reference (--reference), or "
              "check a config and print it with every default.")
def config_command(args: argparse.Namespace) -> int:
    from synaray.config.reference import json_schema, markdown_reference

    if args.schema:
        print(json.dumps(json_schema(), indent=2))
        return 0
    if args.reference:
        sys.stdout.write(markdown_reference())
        return 0
    if args.config is None:
        raise ConfigError("expected a CONFIG file to check, --schema or --reference.")
    import yaml

    from synaray.config import load_run_config, parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    config = load_run_config(args.config, overrides)
    print(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False,
                         allow_unicode=True), end="")
    return 0


# --- init -----------------------------------------------------------------------------------
_INIT_EPILOG = """\
example:
  synaray init qa.jsonl --input input --output target --choices choices
  synaray fit qa.yaml

The config names the data file as given: run `synaray fit` from the same folder."""


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="a JSONL or Parquet file")
    parser.add_argument("--input", dest="inputs", action="append", required=True,
                        metavar="COLUMN", help="a column the program reads (repeatable)")
    parser.add_argument("--output", required=True, metavar="COLUMN",
                        help="the column with the expected answer")
    parser.add_argument("--choices", default=None, metavar="COLUMN",
                        help="a column listing each row's allowed answers")
    parser.add_argument("--output-field", default="answer",
                        help="the answer's field name in the prompt (default: answer)")
    parser.add_argument("--validation", default=None, help="a validation file (else held out)")
    parser.add_argument("--test", default=None, help="a test file (else held out)")
    parser.add_argument("--instructions", default=None, help="the task instructions")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"the language model (default: {DEFAULT_MODEL})")
    parser.add_argument("--out", default=None,
                        help="the config file to write (default: DATA's name with .yaml)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list[string]" if all(isinstance(v, str) for v in value) else "list"
    return "mapping"


def inspect_columns(rows: list[dict]) -> dict[str, dict[str, Any]]:
    """Per column: its types (`type`: one, or 'mixed'), rows holding it, distinct values.

    Example:
        >>> inspect_columns([{"q": "a", "n": 1}, {"q": "b", "n": 1}])["n"]
        {'type': 'integer', 'rows': 2, 'distinct': 1, 'values': [1]}
    """
    kinds: dict[str, Counter] = {}
    values: dict[str, dict[str, Any]] = {}
    for row in rows:
        for column, value in row.items():
            kinds.setdefault(column, Counter())[_kind(value)] += 1
            values.setdefault(column, {}).setdefault(json.dumps(value, sort_keys=True), value)
    out = {}
    for column, counter in kinds.items():
        found = [k for k in counter if k != "null"] or ["null"]
        distinct = list(values[column].values())
        out[column] = {"type": found[0] if len(found) == 1 else "mixed",
                       "rows": sum(counter.values()), "distinct": len(distinct),
                       "values": distinct if len(distinct) <= MAX_AUTO_LABELS else None}
    return out


def _need(columns: dict, name: str, flag: str, source: str) -> dict:
    if name not in columns:
        raise ConfigError(f"{source}: {flag} {name}: no such column; the file has "
                          f"{', '.join(sorted(columns))}.")
    return columns[name]


def _field_type(info: dict, column: str, source: str) -> str:
    kind = info["type"]
    if kind in ("string", "integer", "number", "boolean", "list[string]"):
        return kind
    raise ConfigError(f"{source}: column {column!r} holds {kind} values; expected strings, "
                      "numbers, booleans or lists of strings (use a `template` in the "
                      "config to compose it).")


def _split_plan(n_rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """data/training settings for the splits, and the sizes they give."""
    test_split = 0.2 if args.test is None and n_rows >= 10 else 0.0
    n_test = int(n_rows * test_split)
    rest = n_rows - n_test
    val_split = 0.25 if args.validation is None and rest >= 4 else 0.0
    n_val = int(rest * val_split)
    return {"test_split": test_split, "validation_split": val_split,
            "sizes": {"train": rest - n_val, "validation": n_val if val_split else None,
                      "test": n_test if test_split else None}}


def _outputs(args: argparse.Namespace, columns: dict, source: str) -> tuple[dict, list | None]:
    info = _need(columns, args.output, "--output", source)
    spec: dict[str, Any] = {"column": args.output}
    labels = None
    if args.choices is not None:
        choice_info = _need(columns, args.choices, "--choices", source)
        if not choice_info["type"].startswith("list"):
            raise ConfigError(f"{source}: --choices {args.choices}: expected a column of "
                              f"lists of allowed answers; it holds {choice_info['type']} "
                              "values.")
        spec["choices"] = args.choices
    elif info["values"] is not None and info["distinct"] < info["rows"]:
        labels = [v for v in info["values"] if v is not None]
        spec["labels"] = labels
    else:
        spec["type"] = _field_type(info, args.output, source)
    return {args.output_field: spec}, labels


def _instructions(args: argparse.Namespace, field: str, constrained: bool) -> str:
    if args.instructions:
        return args.instructions
    what = " and ".join(args.inputs)
    return (f"Read the {what} and give the {field}" +
            (", exactly one of the allowed answers." if constrained else "."))


def suggest_config(rows: list[dict], args: argparse.Namespace, source: str
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run config to write, what was chosen: columns, labels, split sizes)."""
    from synaray.config.schema import FIELD_NAME

    columns = inspect_columns(rows)
    inputs: dict[str, dict] = {}
    for column in args.inputs:
        info = _need(columns, column, "--input", source)
        name = column if FIELD_NAME.match(column) else "_".join(column.split()) or "input"
        spec = {"column": column} if name != column else {}
        kind = _field_type(info, column, source)
        if kind != "string":
            spec["type"] = kind
        inputs[name] = spec
    if args.output_field in inputs:
        raise ConfigError(f"--output-field {args.output_field}: an input has that name; "
                          "choose another.")
    outputs, labels = _outputs(args, columns, source)
    plan = _split_plan(len(rows), args)
    data: dict[str, Any] = {"train": args.data}
    for split in ("validation", "test"):
        if getattr(args, split):
            data[split] = getattr(args, split)
    if plan["test_split"]:
        data.update(shuffle=True, test_split=plan["test_split"])
    data.update(inputs=inputs, outputs=outputs)
    training: dict[str, Any] = {"epochs": 1, "batch_size": 16, "seed": 0}
    if plan["validation_split"]:
        training["validation_split"] = plan["validation_split"]
    constrained = labels is not None or args.choices is not None
    config = {
        "data": data,
        "program": {"kind": "generator",
                    "instructions": _instructions(args, args.output_field, constrained)},
        "model": {"model": args.model, "max_tokens": 64},
        # the budget preset (150 LM calls, raced on validation; README: the bench
        # against DSPy's optimizers)
        "optimizer": {"name": "population_search", "auto": "light"},
        "training": training,
        "engine": {"type": "local", "max_concurrency": 4},
    }
    union = ({json.dumps(c) for r in rows for c in (r.get(args.choices) or [])}
             if args.choices else set())
    return config, {"columns": columns, "labels": labels, "sizes": plan["sizes"],
                    "choices": sorted(union)}


def _read(path: str) -> list[dict]:
    from synaray.config.data_files import data_format
    from synaray.config.data_program import read_file_rows

    rows = read_file_rows(path, data_format(path, None, path, "DATA"))
    if not rows:
        raise ConfigError(f"{path}: no rows: nothing to inspect.")
    return rows


def _describe(chosen: dict, source: str, n_rows: int) -> list[str]:
    lines = [f"{source}: {n_rows} rows, columns:"]
    for column, info in chosen["columns"].items():
        lines.append(f"  {column:<20} {info['type']:<13} {info['distinct']} distinct")
    if chosen["labels"] is not None:
        lines.append(f"answer labels ({len(chosen['labels'])}): "
                     + ", ".join(map(str, chosen["labels"])))
    if chosen.get("choices"):
        from synaray.config.data_program import MAX_LABELS

        union = chosen["choices"]
        lines.append(f"answer: one of its row's choices, constrained to the {len(union)} "
                     "distinct choices in the file" + (f" (over {MAX_LABELS}: free text)"
                                                       if len(union) > MAX_LABELS else ""))
    sizes = chosen["sizes"]
    lines.append("splits: " + ", ".join(f"{size} {split}" for split, size in sizes.items()
                                        if size is not None))
    return lines


def _command_line(args: argparse.Namespace) -> str:
    import shlex

    parts = ["synaray", "init", args.data]
    parts += [f"--input {shlex.quote(c)}" for c in args.inputs]
    parts.append(f"--output {shlex.quote(args.output)}")
    if args.choices:
        parts.append(f"--choices {shlex.quote(args.choices)}")
    return " ".join(parts)


def data_file_config(data: str, inputs: list[str], output: str, choices: str | None = None
                     ) -> tuple[dict[str, Any], list[str], str]:
    """What `synaray init DATA --input ... --output ... [--choices ...]` would write (with
    init's defaults for every other option): (the config, the lines describing the file and
    the choices made, that init command line). `synaray fit --data` runs it."""
    parser = argparse.ArgumentParser(prog="synaray init", add_help=False)
    _init_arguments(parser)
    argv = [data, *(f"--input={column}" for column in inputs), f"--output={output}"]
    if choices:
        argv.append(f"--choices={choices}")
    args = parser.parse_args(argv)
    rows = _read(data)
    config, chosen = suggest_config(rows, args, data)
    return config, _describe(chosen, data, len(rows)), _command_line(args)


@command("init", arguments=_init_arguments, epilog=_INIT_EPILOG,
         help="Inspect a JSONL/Parquet file and write a run config for it (no Python needed).")
def init_command(args: argparse.Namespace) -> int:
    import yaml

    from synaray.config import parse_run_config

    rows = _read(args.data)
    config, chosen = suggest_config(rows, args, args.data)
    out = Path(args.out or Path(args.data).with_suffix(".yaml").name)
    if out.exists() and not args.force:
        raise ConfigError(f"{out}: the file exists; choose another --out or add --force.")
    parse_run_config(config, str(out))  # what is written loads
    header = (f"# Written by `{_command_line(args)}`.\n"
              "# The reward defaults to exact match on the output field; see docs/config.md."
              "\n")
    out.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                   encoding="utf-8")
    for line in _describe(chosen, args.data, len(rows)):
        print(f"synaray: {line}")
    print(f"synaray: wrote {out}; run it with: synaray fit {out}", flush=True)
    return 0
