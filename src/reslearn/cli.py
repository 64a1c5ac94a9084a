"""The ``reslearn`` command line: argument parsing only; every command calls into the library.

Errors a user can cause (a bad name, a bad option, a missing file) end in one line on stderr
and exit code 2, never a traceback. Set RESLEARN_DEBUG=1 to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import reslearn
from reslearn.models import list_models, profile_model
from reslearn.report import model_table, stage_table


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parse_option(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` into a typed pair: true/false -> bool, digits -> int, else str."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    lowered = raw.strip().lower()
    value: Any
    if lowered in ("true", "yes", "on"):
        value = True
    elif lowered in ("false", "no", "off"):
        value = False
    elif lowered.lstrip("-").isdigit():
        value = int(lowered)
    else:
        value = raw.strip()
    return key.strip().replace("-", "_"), value


def _paragraph(text: str) -> str:
    """Wrap a help paragraph for formatters that keep the text's own line breaks."""
    return textwrap.fill(text, width=min(shutil.get_terminal_size().columns, 100) - 2)


def _cmd_models(args: argparse.Namespace) -> int:
    names = args.names or list_models(args.family)
    options = dict(args.set)
    profiles = [
        profile_model(n, input_size=args.input_size, stages=args.stages, **options) for n in names
    ]
    if args.json:
        print(json.dumps([p.as_dict() for p in profiles], indent=2))
    elif args.stages:
        print("\n\n".join(f"{model_table([p])}\n\n{stage_table(p.stages)}" for p in profiles))
    else:
        print(model_table(profiles))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``reslearn`` argument parser."""
    parser = _Parser(
        prog="reslearn",
        description="Deep residual learning for image recognition (He et al., 2016): the "
        "paper's networks, recipes, experiments and analysis tools.",
        epilog="Run 'reslearn COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"reslearn {reslearn.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    models = commands.add_parser(
        "models",
        help="list the model zoo with measured parameters and multiply-adds",
        description=_paragraph(
            "List the paper's networks with their parameters (counted on the built model) and "
            "multiply-adds for one image at the native input size (counted with "
            "torch.utils.flop_counter; 1 multiply-add = 2 FLOPs). CIFAR networks (Sec. 4.2) "
            "take 32x32 inputs and default to shortcut option A; ImageNet networks (Table 1) "
            "take 224x224 and default to option B with the stride of a bottleneck on its first "
            "1x1 conv (layout v1, as in the paper; stride_in_1x1=false gives torchvision's "
            "v1.5). Plain networks (shortcut 'none') are the paper's controls."
        ),
        epilog="examples:\n"
        "  reslearn models                          the whole zoo\n"
        "  reslearn models --family imagenet --json\n"
        "  reslearn models resnet50 --set stride_in_1x1=false   torchvision's layout\n"
        "  reslearn models resnet20 --set shortcut=B            projection shortcuts\n"
        "  reslearn models resnet34 --stages                    Table 1, measured",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_argument("names", nargs="*", metavar="NAME", help="models to show (default: all)")
    models.add_argument("--family", choices=("cifar", "imagenet"), help="show one family only")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.add_argument(
        "--stages",
        action="store_true",
        help="also show each model stage by stage (output shape, parameters, multiply-adds; "
        "layer1..layer4 are the paper's conv2_x..conv5_x)",
    )
    models.add_argument(
        "--input-size",
        type=int,
        metavar="PX",
        help="count multiply-adds at PX x PX instead of the native size",
    )
    models.add_argument(
        "--set",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a model option (num_classes, in_channels, shortcut, stride_in_1x1, "
        "zero_init_residual); repeatable",
    )
    models.set_defaults(func=_cmd_models)
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
