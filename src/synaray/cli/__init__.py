"""The `synaray` command line (`synaray --help`); each subcommand lives in `synaray.cli.main`."""

from synaray.cli.main import build_parser, command, main

__all__ = ["build_parser", "command", "main"]
