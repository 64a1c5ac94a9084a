"""The ``reslearn`` command line: argument parsing only; every command calls into the library.

One error boundary for every command: a failure the user can fix (``ValueError``, ``OSError``,
``reslearn.errors.UserError``) ends in one line on stderr that names the file or value, with
exit code 2; ``--debug`` (or RESLEARN_DEBUG=1) prints its traceback first. Anything else is a
bug: its traceback is kept, followed by a line asking to report it, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback
from collections.abc import Sequence

from reslearn.commands import COMMANDS
from reslearn.commands.arguments import Parser, parse_option
from reslearn.errors import KNOWN_ERRORS, for_the_command_line
from reslearn.version import __version__

__all__ = ["build_parser", "main", "parse_option"]

_DEBUG_HELP = "show the traceback of every error (also: RESLEARN_DEBUG=1)"


def build_parser() -> argparse.ArgumentParser:
    """The full ``reslearn`` argument parser."""
    parser = Parser(
        prog="reslearn",
        description="Deep residual learning for image recognition (He et al., 2016): the "
        "paper's networks, recipes, experiments and analysis tools.",
        epilog="Run 'reslearn COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"reslearn {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(commands)
    for subparser in commands.choices.values():  # `reslearn eval --debug ...` works too
        subparser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("RESLEARN_DEBUG", "") not in (
        "",
        "0",
    )


def _printable_stdout() -> None:
    """Text that the terminal's encoding cannot hold (a file name with undecodable bytes) is
    written escaped instead of failing half-way through the output."""
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _printable_stdout()
    prefix = f"reslearn {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except KNOWN_ERRORS as error:
        if _debug(args):
            traceback.print_exc()
        print(f"{prefix}: error: {for_the_command_line(error)}", file=sys.stderr)
        return 2
    except Exception:  # a bug: never hidden
        traceback.print_exc()
        print(
            f"{prefix}: internal error: the traceback above is a bug in reslearn "
            f"{__version__}, not a problem with your input; please report it with this "
            "traceback and the command line",
            file=sys.stderr,
        )
        return 1
