"""The `handoff` command. Each area registers its subcommands from its own module.

Errors: a ``HandoffError`` (bad input, a failed precondition) is one line on stderr and exit 2
(commands return 1 themselves for rule violations). Anything else is caught by the last-resort
handler below: still one line, exit 2, with the traceback only under ``--debug`` (or
``HANDOFF_DEBUG=1``). Every line is redacted (``handoff.redact``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from . import __version__
from .errors import HandoffError
from .redact import redact

# Modules exposing ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
COMMAND_MODULES = (
    "handoff.commands.core",
    "handoff.commands.package",
    "handoff.commands.impact",
    "handoff.commands.map",
    "handoff.commands.recovery",
    "handoff.commands.registry",
    "handoff.commands.sla",
)
DEBUG_ENV = "HANDOFF_DEBUG"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {redact(' '.join(message.split()))} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="handoff", description="handoff: cross-domain dbt pipelines on Airflow 3 — compile plans, "
                     "publish them to the asset registry, check, explain, reconcile and report impact.")
    parser.add_argument("--version", action="version", version=f"handoff {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"print the traceback of an unexpected error (or set {DEBUG_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _add_debug_everywhere(subparsers)
    return parser


def _add_debug_everywhere(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``--debug`` also after the command (``handoff publish --debug ...``)."""
    for sub in set(subparsers.choices.values()):
        if not any("--debug" in a.option_strings for a in sub._actions):
            sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug_everywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        debug = debug or bool(getattr(args, "debug", False))
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except HandoffError as exc:
        _fail(exc.one_line(), debug)
        return exc.exit_code
    except KeyboardInterrupt:
        print("handoff: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BrokenPipeError:
        # the reader of our output went away (`handoff ... | head`): nothing to say to anyone
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 2
    except MemoryError:
        return _fail("out of memory — the input is too large for this machine", debug)
    except RecursionError:
        return _fail("the input is nested too deeply to read — check that it is the file handoff wrote", debug)
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return _fail(f"{where}{exc.strerror or exc} — check the path and its permissions", debug)
    except Exception as exc:  # noqa: BLE001 - the last resort: one line instead of a traceback
        detail = " ".join(str(exc).split())[:300]
        return _fail(f"unexpected {type(exc).__name__}: {detail or 'no detail'} — this is a bug in handoff: "
                     f"re-run with --debug for the traceback and report it", debug)


def _fail(line: str, debug: bool) -> int:
    if debug:
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
    print(f"handoff: error: {redact(' '.join(line.split()))}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
