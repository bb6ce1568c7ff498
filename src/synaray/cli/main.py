"""The `synaray` command.

Each subcommand is one function registered with `@command(...)`: it receives the parsed
arguments and returns the exit code. The registry builds the argparse tree, so adding
`fit`, `evaluate`, `sweep`, `status` or `resume` is one more decorated function (with a
function that declares its arguments). Heavy imports (Ray, litellm, llama_cpp) happen inside
the command functions only. A `SynarayError` becomes one line on stderr and exit code 1
(a failed preflight: its lines and exit code 3; a run stopped by the circuit breaker:
its last errors and exit code 4).

Example:
    $ synaray serve-local-lm --port 8080
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from synaray.errors import SynarayError

__all__ = ["add_log_format_argument", "build_parser", "command", "json_output", "main",
           "positive_int"]

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    arguments: Arguments
    run: Handler
    epilog: str | None = None


_COMMANDS: dict[str, _Command] = {}


def command(name: str, *, help: str, arguments: Arguments | None = None,
            epilog: str | None = None) -> Callable[[Handler], Handler]:
    """Register `run(args) -> exit code` as the subcommand `name`; `epilog` (examples,
    notes) ends its `--help`, printed as written."""

    def decorator(run: Handler) -> Handler:
        _COMMANDS[name] = _Command(name, help, arguments or (lambda parser: None), run,
                                   epilog)
        return run

    return decorator


# Modules that register more subcommands with `@command` when imported (each is cheap to
# import: heavy imports stay inside the command functions).
_COMMAND_MODULES = (
    "synaray.cli.run_commands",      # fit, evaluate, resume
    "synaray.cli.sweep_command",     # sweep
    "synaray.cli.observe_commands",  # status, report
    "synaray.cli.config_commands",   # config, init
)


def _load_command_modules() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but one of its imports is missing
                raise


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    """`--log-format text|json`: json prints progress, messages and the summary as one JSON
    object per line (`synaray.utils.progress`); `main` applies it with `--quiet`."""
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="text (default) or json: one JSON object per progress line, "
                             "message and summary, for machines")


def json_output(args: argparse.Namespace) -> bool:
    """Whether the command was asked for `--log-format json`."""
    return getattr(args, "log_format", "text") == "json"


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every registered subcommand."""
    from synaray.version import __version__

    _load_command_modules()

    parser = argparse.ArgumentParser(
        prog="synaray",
        description="Optimize LM programs against a reward, on one machine or a Ray cluster.")
    parser.add_argument("--version", action="version", version=f"synaray {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in _COMMANDS.values():
        sub = subparsers.add_parser(
            cmd.name, help=cmd.help, description=cmd.help, epilog=cmd.epilog,
            formatter_class=(argparse.RawDescriptionHelpFormatter if cmd.epilog
                             else argparse.HelpFormatter))
        cmd.arguments(sub)
        sub.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Handler | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    from synaray.utils.progress import log_event, progress_settings

    try:
        with progress_settings(quiet=bool(getattr(args, "quiet", False)),
                               log_format=getattr(args, "log_format", "text")):
            return int(run(args) or 0)
    except SynarayError as exc:
        text = str(exc).strip()
        # one line, except for errors whose detail lines are the point (the models that
        # failed the preflight, the last LM errors of a run the circuit breaker stopped)
        message = text if exc.exit_code != 1 else (text.splitlines()[0] if text
                                                    else type(exc).__name__)
        if json_output(args):
            log_event("error", {"command": args.command, "message": message,
                                "error_type": type(exc).__name__}, sys.stderr)
        else:
            print(f"synaray {args.command}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


# -- serve-local-lm ----------------------------------------------------------------------
def positive_int(text: str) -> int:
    """An argparse type: a positive integer, or an error that quotes what was received."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _serve_local_lm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=positive_int, default=None,
                        help="TCP port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--n-ctx", type=positive_int, default=4096,
                        help="context size in tokens (default: 4096)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for generation (default: $SYNARAY_LOCAL_LM_THREADS, "
                             "else the free CPUs: usable CPUs minus the 1-minute load "
                             "average, 1 to 4)")
    parser.add_argument("--startup-timeout", type=float, default=120.0,
                        help="seconds to wait for the server to answer (default: 120)")


@command("serve-local-lm", arguments=_serve_local_lm_arguments,
         help="Serve the bundled SmolLM2-135M-Instruct with llama.cpp on 127.0.0.1 "
              "until Ctrl-C.")
def serve_local_lm(args: argparse.Namespace) -> int:
    """Start the local LM server, print how to reach it, and stop it on SIGINT/SIGTERM."""
    from synaray.errors import LMServerError
    from synaray.lm.local.server import choose_threads, local_lm_server

    threads, why = (args.threads, "--threads") if args.threads else choose_threads()
    stop = threading.Event()
    previous = _install_stop_handlers(stop)
    try:
        with local_lm_server(port=args.port, n_ctx=args.n_ctx, n_threads=threads,
                             startup_timeout_s=args.startup_timeout, record=True) as server:
            _print_ready(server, f"{threads} ({why})")
            while not stop.wait(0.5):
                if not server.alive():
                    raise LMServerError(
                        f"the local LM server exited with code {server.process.returncode}: "
                        f"{server.last_log_line()}")
    finally:
        _restore_handlers(previous)
    print("synaray: local LM server stopped.", flush=True)
    return 0


def _print_ready(server: Any, threads: str) -> None:
    print("synaray: local LM server ready (Ctrl-C to stop)\n"
          f"  model:    {server.model}\n"
          f"  threads:  {threads}\n"
          f"  api_base: {server.api_base}\n"
          f'  example:  synaray.LanguageModel(model="{server.model}", '
          f'api_base="{server.api_base}", api_key="sk-local")\n'
          '  or, from any process on this machine: synaray.LanguageModel('
          'model="local/smollm2-135m")', flush=True)


def _install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_handlers(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


if __name__ == "__main__":  # pragma: no cover
    # `python -m synaray.cli.main`: run the imported module's `main`, the registry the
    # subcommand modules fill (this file also runs as `__main__`, a second module object).
    import importlib

    sys.exit(importlib.import_module("synaray.cli.main").main())
