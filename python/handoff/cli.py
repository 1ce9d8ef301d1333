"""The `handoff` command. Each area registers its subcommands from its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, NoReturn, Sequence

from . import __version__
from .errors import HandoffError

# Modules exposing ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
COMMAND_MODULES = (
    "handoff.commands.core",
    "handoff.commands.impact",
    "handoff.commands.recovery",
    "handoff.commands.registry",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="handoff", description="handoff: cross-domain dbt pipelines on Airflow 3 — compile plans, publish them to the asset registry, check, explain, reconcile and report impact.")
    parser.add_argument("--version", action="version", version=f"handoff {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except HandoffError as exc:
        print(f"handoff: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("handoff: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
