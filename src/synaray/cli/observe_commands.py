"""`synaray status` and `synaray report`: look at a run from its files in run storage.

Both read what a run writes to `<storage>/<run>/` (status.json, optimizer_state.json,
best_program.json, data/: `synaray.runs`), on either engine; neither starts Ray. A run that
ended early says so: "failed" (with the error) or "stopped" (a callback or Ctrl-C).

Example:
    $ synaray status my-run --storage s3://bucket/runs --watch
    $ synaray report my-run --storage s3://bucket/runs --out my-run.html
"""

from __future__ import annotations

import argparse
import sys
import time

from synaray.cli.main import command

__all__ = ["report", "status"]

EXIT_FAILED_OR_STALE = 3


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN",
                        help="the run name under --storage, or the path of a run folder")
    parser.add_argument("--storage", default=None,
                        help="run storage: a folder or a pyarrow URI such as s3://bucket/runs "
                             "(default: ./synaray_runs)")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser)
    parser.add_argument("--watch", action="store_true",
                        help="keep printing the status until the run ends (Ctrl-C to stop)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between reads with --watch (default: 5)")
    parser.add_argument("--stale-after", type=float, default=600.0,
                        help="a running run not updated for this many seconds (and 5 of its "
                             "average steps) is reported stale (default: 600)")


@command("status", arguments=_status_arguments,
         help="Show a run's generation, best reward, LM calls and rate, failures and ETA, and "
              "whether it is running, finished, failed, stopped or stale.")
def status(args: argparse.Namespace) -> int:
    """Print the status once, or (--watch) one line per update until the run ends.

    Exit code: 0 running or finished, 3 failed or stale, 1 no such run.
    """
    from synaray.observability.status import format_status, read_status

    current = read_status(args.run, args.storage, stale_after_s=args.stale_after)
    if not args.watch:
        print(format_status(current), flush=True)
        return _exit_code(current.state)
    tty = sys.stdout.isatty()
    last_line = None
    while True:
        line = current.one_line()
        if line != last_line:
            sys.stdout.write(("\r\x1b[2K" + line) if tty else line + "\n")
            sys.stdout.flush()
            last_line = line
        if current.state != "running":
            break
        time.sleep(max(0.1, args.interval))
        current = read_status(args.run, args.storage, stale_after_s=args.stale_after)
    if tty:
        sys.stdout.write("\n")
    print(format_status(current), flush=True)
    return _exit_code(current.state)


def _exit_code(state: str) -> int:
    return EXIT_FAILED_OR_STALE if state in ("failed", "stale") else 0


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser)
    parser.add_argument("--out", default=None,
                        help="the HTML file to write (default: ./report-<run>.html); the "
                             "charts are written next to it")
    parser.add_argument("--fail-below", type=float, default=1.0,
                        help="list validation examples of the best program scoring under "
                             "this reward (default: 1.0)")
    parser.add_argument("--max-failures", type=int, default=50,
                        help="at most this many failing examples, worst first (default: 50)")
    parser.add_argument("--svg", action="store_true",
                        help="draw charts as SVG even when matplotlib is installed")


@command("report", arguments=_report_arguments,
         help="Write a self-contained HTML report of a run: reward curves against LM calls, "
              "lineage of the best candidate, its instructions and examples, cost, and the "
              "examples it still fails.")
def report(args: argparse.Namespace) -> int:
    from synaray.reports import build_report

    path = build_report(args.run, storage=args.storage, out=args.out,
                        fail_below=args.fail_below, max_failures=args.max_failures,
                        force_svg=args.svg)
    _print_changed(args.run, args.storage, args.max_failures)
    charts = sorted(p.name for p in path.parent.glob(f"{path.stem}-*")
                    if p.suffix in (".png", ".svg"))
    print(f"synaray: report written to {path}" + (f" (charts: {', '.join(charts)})"
                                                  if charts else ""), flush=True)
    return 0


def _print_changed(run: str, storage: str | None, limit: int) -> None:
    """The rows the search changed (improved, regressed) per split, as `fit` recorded them."""
    from synaray.observability.run_files import open_run
    from synaray.reports import RunData

    data = RunData.load(open_run(run, storage))
    for split, name in (("test", "test"), ("val", "validation")):
        rows = data.predictions.get(split)
        if not rows:
            continue
        changed = data.changed_rows(split)
        print(f"{name}: {len(changed['improved'])} rows improved, "
              f"{len(changed['regressed'])} regressed, of {len(rows)}")
        for kind in ("regressed", "improved"):
            for row in changed[kind][:limit]:
                print(f"  {kind:<9} {row['id']:<12} reward {row['reward_before']:.3g} -> "
                      f"{row['reward_after']:.3g}  expected {row['expected']}  before "
                      f"{row['predicted_before']}  after {row['predicted_after']}")
