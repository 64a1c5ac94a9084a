"""The ``reslearn`` command line: argument parsing only; every command calls into the library.

Errors a user can cause (a bad name, a bad option, a missing file) end in one line on stderr
and exit code 2, never a traceback. Set RESLEARN_DEBUG=1 to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import reslearn
from reslearn.commands import COMMANDS
from reslearn.commands.common import Parser, parse_option

__all__ = ["build_parser", "main", "parse_option"]


def build_parser() -> argparse.ArgumentParser:
    """The full ``reslearn`` argument parser."""
    parser = Parser(
        prog="reslearn",
        description="Deep residual learning for image recognition (He et al., 2016): the "
        "paper's networks, recipes, experiments and analysis tools.",
        epilog="Run 'reslearn COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"reslearn {reslearn.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except (ValueError, OSError) as error:
        if os.environ.get("RESLEARN_DEBUG"):
            raise
        print(f"reslearn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"reslearn {args.command}: interrupted", file=sys.stderr)
        return 130
