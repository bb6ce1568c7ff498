"""`synaray fit`, `synaray resume` and `synaray evaluate`.

    synaray fit examples/sports_population_search.yaml --engine ray --storage "$PWD/runs"
    synaray resume RUN --storage "$PWD/runs"
    synaray evaluate --run RUN --storage "$PWD/runs" --data big.parquet --out results/

`fit` and `resume` are `synaray.config.load_run_config` + `run_fit`; `evaluate` is
`synaray.engines.ray.bulk_evaluate.bulk_evaluate` (Ray Data, streaming, resumable), which
also takes a small JSONL file. Heavy imports (Ray, litellm, pydantic models) happen inside
the command functions, so `synaray --help` stays quick.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from typing import Any

from synaray.cli.main import add_log_format_argument, command, json_output, positive_int
from synaray.errors import CheckpointError, ConfigError
from synaray.utils.progress import log_event, log_message

__all__ = ["evaluate_command", "fit_command", "resume_command"]


def _say(text: str) -> None:
    log_message(text)


_TRUST_HELP = ("trust the files this command loads: import the modules a program file or a "
               "stored run config names (default: only synaray's own and registered code)")


def _trust(args: argparse.Namespace) -> Any:
    """`safe_mode_scope(False)` with --trust-code, else a scope that changes nothing."""
    from synaray.saving import safe_mode_scope

    return safe_mode_scope(False if getattr(args, "trust_code", False) else None)


def one_line_io_errors(run: Callable[[argparse.Namespace], int]
                       ) -> Callable[[argparse.Namespace], int]:
    """A command whose storage or file errors (`OSError`, as pyarrow raises for an
    unreachable `s3://` endpoint) end as one line naming the storage, not a traceback."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except OSError as exc:
            from synaray.runs.storage import redact_uri

            text = " ".join(str(exc).split()) or type(exc).__name__
            places = [f"{flag} {redact_uri(value)}" for flag, value in
                      (("--storage", getattr(args, "storage", None)),
                       ("--out", getattr(args, "out", None))) if value]
            where = f" (with {', '.join(places)})" if places else ""
            raise CheckpointError(f"{text}{where}") from None

    return wrapper


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


# --- fit ----------------------------------------------------------------------------------
_FIT_EPILOG = """\
examples:
  synaray fit examples/object_counting_random_few_shot.toml
  synaray fit --data questions.jsonl --input input --output target --choices choices
  synaray fit examples/sports_population_search.yaml --engine ray \\
      --set optimizer.population_size=4 --set training.epochs=2
  ray job submit --working-dir . -- synaray fit examples/sports_population_search.yaml \\
      --address auto --storage "$PWD/synaray_runs"

The run's folder <storage>/<run name>/ holds run_config.json, the checkpoints and
best_program.json; continue a stopped run with `synaray resume RUN --storage ...`."""


def _fit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", nargs="?", default=None,
                        help="the run config (.yaml, .yml, .toml or .json); or --data")
    data = parser.add_argument_group(
        "without a config file", "run the config `synaray init DATA --input ... --output ...` "
        "would write (kept in the run folder as run_config.json)")
    data.add_argument("--data", default=None, metavar="FILE",
                      help="a JSONL or Parquet file of rows")
    data.add_argument("--input", dest="data_inputs", action="append", default=[],
                      metavar="COLUMN", help="a column the program reads (repeatable)")
    data.add_argument("--output", dest="data_output", default=None, metavar="COLUMN",
                      help="the column with the expected answer")
    data.add_argument("--choices", dest="data_choices", default=None, metavar="COLUMN",
                      help="a column listing each row's allowed answers")
    parser.add_argument("--engine", choices=["local", "ray"], default=None,
                        help="where evaluations run (overrides engine.type)")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster: 'auto' (the one this runs on, as in "
                             "`ray job submit`) or host:port (overrides engine.address; "
                             "implies --engine ray)")
    parser.add_argument("--storage", default=None,
                        help="where runs are kept: a folder or a URI such as "
                             "s3://bucket/prefix (default ./synaray_runs, made absolute)")
    parser.add_argument("--run-name", default=None,
                        help="the run's name (default: program name and time)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optimizer.population_size=4 "
                             "(the value is read as YAML; repeat for several keys)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run named by --run-name (or run_name) from its "
                             "checkpoint instead of starting a new one")
    parser.add_argument("--detach", action="store_true",
                        help="return once the run has started on the Ray cluster (needs "
                             "--address); it goes on there; follow it with `synaray status "
                             "RUN --storage ... --watch` from any machine")
    _run_flags(parser)


def _run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags `fit` and `resume` share: --trust-code, --quiet, --log-format,
    --no-preflight."""
    parser.add_argument("--trust-code", action="store_true", help=_TRUST_HELP)
    parser.add_argument("--quiet", action="store_true", help="print only the final summary")
    add_log_format_argument(parser)
    add_no_preflight(parser)


def add_no_preflight(parser: argparse.ArgumentParser) -> None:
    """The `--no-preflight` flag of commands that call models."""
    parser.add_argument("--no-preflight", action="store_true",
                        help="skip the check that sends each model one cheap request before "
                             "the run (for endpoints that charge per call)")


def _fit_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from synaray.config import parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    if args.no_preflight:
        overrides["training.preflight"] = False
    if args.address is not None:
        if args.engine == "local":
            raise ConfigError("--address joins a Ray cluster: it needs --engine ray.")
        overrides["engine.type"] = "ray"
        overrides["engine.address"] = args.address
    if args.engine is not None:
        overrides["engine.type"] = args.engine
    if args.storage is not None:
        overrides["storage"] = args.storage
    if args.run_name is not None:
        overrides["run_name"] = args.run_name
    return overrides


def print_outcome(outcome: Any, as_json: bool = False) -> None:
    """The end of `fit`/`resume`: where the best program is, and its rewards."""
    if as_json:
        log_event("summary", outcome.to_dict())
        return
    print(f"\nrun:          {outcome.run_name}")
    print(f"best program: {outcome.best_program_path}")
    print(f"stopped:      {outcome.stop_reason}")
    rows = [("validation", outcome.val_reward, outcome.val_metrics)]
    if outcome.test_reward is not None:
        rows.append(("test", outcome.test_reward, outcome.test_metrics))
    metric_names = sorted({name for _, _, metrics in rows for name in metrics})
    header = f"{'split':<12} {'reward':>8}" + "".join(f" {n:>12}" for n in metric_names)
    print("\n" + header)
    for split, reward, metrics in rows:
        print(f"{split:<12} {_fmt(reward):>8}"
              + "".join(f" {_fmt(metrics.get(n)):>12}" for n in metric_names))
    print_before_after(outcome)
    print(f"\n{outcome.generations} generations, {outcome.lm_calls} LM calls "
          f"({outcome.lm_failures} failed), {outcome.time_s:.0f} s", flush=True)


def _signed(value: Any) -> str:
    return "-" if value is None or value != value else f"{value:+.3f}"


def print_before_after(outcome: Any) -> None:
    """The program as given against the best one, per split, with the gain's 95% interval."""
    comparison = getattr(outcome, "comparison", None) or {}
    if not comparison:
        return
    print(f"\n{'before/after':<12} {'rows':>5} {'before':>8} {'after':>8} {'gain':>8} "
          f"{'95% CI':>18} {'improved':>9} {'regressed':>9}")
    for split, name in (("val", "validation"), ("test", "test")):
        row = comparison.get(split)
        if row is None:
            continue
        interval = f"[{_signed(row['ci_low'])}, {_signed(row['ci_high'])}]"
        print(f"{name:<12} {row['rows']:>5} {_fmt(row['before']):>8} {_fmt(row['after']):>8} "
              f"{_signed(row['gain']):>8} {interval:>18} {row['improved']:>9} "
              f"{row['regressed']:>9}")
    for split, uri in sorted((getattr(outcome, "predictions", None) or {}).items()):
        print(f"per-row predictions ({split}): {uri}")


@command("fit", arguments=_fit_arguments, epilog=_FIT_EPILOG,
         help="Optimize the program of a run config (YAML/TOML) locally or on Ray.")
@one_line_io_errors
def fit_command(args: argparse.Namespace) -> int:
    """Load the config (with overrides), run it, print the best program and its rewards."""
    from synaray.config import run_fit

    overrides = _fit_overrides(args)
    with _trust(args):
        config = _fit_config(args, overrides)
        outcome = run_fit(config, resume=args.resume, verbose=not args.quiet,
                          detach=args.detach)
    if args.detach:  # the run goes on on the cluster
        _print_detached(outcome, json_output(args))
        return 0
    print_outcome(outcome, json_output(args))
    return 0


def _fit_config(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    """The run config of `fit`: the CONFIG file, or the one `synaray init` makes for --data."""
    from synaray.config import load_run_config, parse_run_config

    data_flags = [flag for flag, value in (("--input", args.data_inputs),
                                           ("--output", args.data_output),
                                           ("--choices", args.data_choices)) if value]
    if args.data is None:
        if data_flags:
            raise ConfigError(f"{data_flags[0]} goes with --data FILE (a run without a "
                              "config file); with a CONFIG file, describe the data in it.")
        if args.config is None:
            raise ConfigError("fit needs a CONFIG file, or --data FILE with --input COLUMN "
                              "and --output COLUMN.")
        if not args.quiet:
            _say(f"loading {args.config}")
        return load_run_config(args.config, overrides)
    if args.config is not None:
        raise ConfigError(f"Give a CONFIG file ({args.config}) or --data, not both.")
    if not args.data_inputs or args.data_output is None:
        raise ConfigError("--data needs --input COLUMN (one or more) and --output COLUMN.")
    from synaray.cli.config_commands import data_file_config

    data, lines, init_line = data_file_config(args.data, args.data_inputs, args.data_output,
                                              args.data_choices)
    if not args.quiet:
        for line in lines:
            _say(line)
        _say(f"running the config `{init_line}` writes (saved in the run folder)")
    return parse_run_config(data, args.data, overrides)


def _print_detached(run: Any, as_json: bool) -> None:
    from synaray.runs.storage import redact_uri

    storage = redact_uri(run.storage)
    follow = f"synaray status {run.run_name} --storage {storage} --watch"
    if as_json:
        log_event("detached", {"run_name": run.run_name, "storage": storage,
                               "follow": follow})
        return
    print(f"\nrun {run.run_name!r} started on the cluster; it goes on without this "
          f"command.\nfollow it with:  {follow}\nthe best program will be in "
          f"{storage}/{run.run_name}/best_program.json", flush=True)


# --- resume -------------------------------------------------------------------------------
def _resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="the run's name (its folder in --storage)")
    parser.add_argument("--storage", required=True,
                        help="where the run is kept (the --storage it was started with)")
    parser.add_argument("--address", default=None,
                        help="the Ray cluster to continue on ('auto' under `ray job submit`; "
                             "default: the run's own setting)")
    parser.add_argument("--config", default=None, metavar="CONFIG",
                        help="the config file the run was started with: the stored "
                             "run_config.json may then run the code both name")
    _run_flags(parser)


@command("resume", arguments=_resume_arguments,
         help="Continue a run started by `synaray fit` from its last checkpoint.")
@one_line_io_errors
def resume_command(args: argparse.Namespace) -> int:
    """Rebuild the run from its run_config.json and continue it (no evaluation is redone).

    The stored config is a file in run storage, which others may write: code it names
    outside synaray runs only with --trust-code or when --config names the same code.
    """
    from synaray.config import load_saved_run_config, parse_run_config, read_config_file, run_fit
    from synaray.saving import safe_mode_scope

    overrides: dict[str, Any] = {"engine.address": args.address} if args.address else {}
    if args.no_preflight:
        overrides["training.preflight"] = False
    given = (parse_run_config(read_config_file(args.config), args.config, check_files=False)
             if args.config else None)  # data files may be gone: the run kept its data
    config = load_saved_run_config(args.storage, args.run, overrides or None,
                                   trust_code=args.trust_code, given=given)
    if not args.quiet:
        _say(f"resuming {args.run} from {config.source}")
    trusted = args.trust_code or given is not None
    with safe_mode_scope(not trusted, source=config.source):
        outcome = run_fit(config, resume=True, verbose=not args.quiet)
    print_outcome(outcome, json_output(args))
    return 0


# --- evaluate -----------------------------------------------------------------------------
_EVALUATE_EPILOG = """\
examples:
  synaray evaluate --program runs/RUN/best_program.json --data test.jsonl --out res/
  synaray evaluate --run RUN --storage s3://bucket/runs --top-k 3 \\
      --data s3://bucket/questions/ --out s3://bucket/results/ \\
      --input-field question=query --address auto

Results: <out>/part-*.parquet (one row per program and example: prediction, reward,
error, LM usage), <out>/summary.json. Rerunning with the same --out scores only the
rows not yet scored."""


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--program", help="a saved program JSON (e.g. a run's "
                                          "best_program.json), local or a URI")
    source.add_argument("--run", help="a run's name in --storage (its best program, or its "
                                      "--top-k best candidates)")
    parser.add_argument("--storage", help="where the --run is kept")
    parser.add_argument("--config", default=None, metavar="CONFIG",
                        help="a run config describing the data (data.inputs/data.outputs): "
                             "rows are mapped to the program's fields as fit mapped them "
                             "(default: the --run's own run_config.json)")
    parser.add_argument("--top-k", type=positive_int, default=None,
                        help="with --run: score the run's K best candidates")
    parser.add_argument("--data", required=True,
                        help="Parquet file or folder (local or URI), or a JSONL file")
    parser.add_argument("--out", required=True, help="results folder (local or URI)")
    parser.add_argument("--input-field", action="append", default=[], metavar="COLUMN=FIELD",
                        help="data column COLUMN fills program input field FIELD "
                             "(default: same names; repeat as needed)")
    parser.add_argument("--output-field", action="append", default=[], metavar="COLUMN=FIELD",
                        help="data column COLUMN holds the expected output field FIELD")
    parser.add_argument("--id-field", default="id", help="column of unique row ids "
                                                         "(default: id)")
    parser.add_argument("--reward", default=None, help="reward id (default: the program's)")
    parser.add_argument("--metric", action="append", default=None,
                        help="metric id (default: the program's; repeat as needed)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="rows per batch: a batch reward sees one batch at a "
                             "time (default: 64)")
    parser.add_argument("--concurrency", type=positive_int, default=16,
                        help="samples in flight per worker (default: 16)")
    parser.add_argument("--num-workers", type=positive_int, default=2,
                        help="scorer actors (default: 2)")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster ('auto' or host:port); default: the "
                             "running one or a new local one")
    parser.add_argument("--trust-code", action="store_true", help=_TRUST_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_log_format_argument(parser)
    add_no_preflight(parser)


def _field_map(pairs: list[str], flag: str) -> dict[str, str] | None:
    """`COLUMN=FIELD` pairs -> {field: column} (what bulk_evaluate takes)."""
    if not pairs:
        return None
    mapping = {}
    for text in pairs:
        column, sep, field = text.partition("=")
        if not sep or not column or not field:
            raise ConfigError(f"{flag} {text!r}: expected COLUMN=FIELD, such as "
                              "question=query.")
        mapping[field] = column
    return mapping


def _program_source(args: argparse.Namespace) -> str:
    if args.program is not None:
        if args.top_k is not None:
            raise ConfigError("--top-k needs --run (a run's candidates), not --program.")
        return args.program
    if not args.storage:
        raise ConfigError("--run needs --storage (where the run is kept).")
    from synaray.runs.files import BEST_PROGRAM
    from synaray.runs.naming import open_existing_run

    store = open_existing_run(args.storage, args.run)
    if not store.exists(BEST_PROGRAM):
        raise ConfigError(f"Run {args.run!r} has no {BEST_PROGRAM} yet.")
    if args.top_k is None:
        return store.uri(BEST_PROGRAM)
    return store.uri("").rstrip("/")  # the run folder: its top-k candidates


def _data_description(args: argparse.Namespace) -> Any:
    """The `data` section of a run described by its data (`data.inputs`), from --config or
    the run's run_config.json; None for runs whose data classes come from Python."""
    from synaray.config import read_config_file
    from synaray.config.schema import DataConfig

    if args.config is not None:
        section, source = read_config_file(args.config).get("data"), args.config
    elif args.run is not None and args.storage:
        from synaray.config.runner import open_existing_run

        store = open_existing_run(args.storage, args.run)
        if not store.exists("run_config.json"):
            return None
        section = (store.read_json("run_config.json") or {}).get("data")
        source = store.display_uri("run_config.json")
    else:
        return None
    if not isinstance(section, dict) or not section.get("inputs"):
        return None
    try:
        return DataConfig.model_validate(section)
    except ValueError as exc:
        raise ConfigError(f"{source}: data: {exc}") from None


def _print_summary(summary: dict, out: str, as_json: bool = False) -> None:
    if as_json:
        log_event("summary", {"out": out, **summary})
        return
    programs = summary.get("programs") or {}
    names = sorted({m for p in programs.values() for m in (p.get("metrics") or {})})
    print("\n" + f"{'program':<24} {'rows':>7} {'reward':>8}"
          + "".join(f" {n:>12}" for n in names)
          + f" {'failures':>9} {'lm_calls':>9} {'lm_failed':>9}")
    for pid, p in programs.items():
        metrics = p.get("metrics") or {}
        print(f"{pid[:24]:<24} {p.get('rows', 0):>7} {_fmt(p.get('reward')):>8}"
              + "".join(f" {_fmt(metrics.get(n)):>12}" for n in names)
              + f" {p.get('failures', 0):>9} {p.get('lm_calls', 0):>9}"
              f" {p.get('lm_failures', 0):>9}")
    print(f"\nresults: {out} (summary.json, part-*.parquet)", flush=True)


@command("evaluate", arguments=_evaluate_arguments, epilog=_EVALUATE_EPILOG,
         help="Score a saved program (or a run's best ones) on a dataset with Ray Data.")
@one_line_io_errors
def evaluate_command(args: argparse.Namespace) -> int:
    """Score, write per-row results and a summary, print the reward and metrics table."""
    from synaray.cli.evaluate_support import run_bulk_evaluate

    with _trust(args):
        program = _program_source(args)
        summary = run_bulk_evaluate(
            program, args.data, args.out, top_k=args.top_k,
            input_fields=_field_map(args.input_field, "--input-field"),
            output_fields=_field_map(args.output_field, "--output-field"),
            id_field=args.id_field, reward=args.reward, metrics=args.metric,
            batch_size=args.batch_size, concurrency=args.concurrency,
            num_workers=args.num_workers, address=args.address, verbose=not args.quiet,
            preflight=False if args.no_preflight else None,
            data_description=_data_description(args))
    _print_summary(summary, args.out if "://" in args.out else os.path.abspath(args.out),
                   json_output(args))
    return 0
