"""What every ``reslearn`` subcommand shares: a one-line-error parser and help formatting."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from pathlib import Path
from typing import Any


class Parser(argparse.ArgumentParser):
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


def _integer(text: str, low: int) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {value}")
    return value


def count(text: str) -> int:
    """A count that must be at least 1 (images, classes, a batch, a shift): 0 or a negative
    number would make a measurement of nothing that still prints numbers."""
    return _integer(text, 1)


def natural(text: str) -> int:
    """An integer >= 0 (e.g. worker processes, where 0 means "in this process")."""
    return _integer(text, 0)


def int_list(text: str) -> list[int]:
    """Parse integers separated by commas or spaces (``32000,48000``; ``32_000`` works too)."""
    try:
        return [int(part.replace("_", "")) for part in text.replace(" ", ",").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 32000,48000; got {text!r}"
        ) from None


def sizes(text: str) -> list[int]:
    """Parse a non-empty list of positive sizes (``224,256,384``)."""
    values = int_list(text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes like 224,256,384; got {text!r}")
    return values


def check_output(path: Path, *, overwrite: bool, example: str) -> None:
    """Refuse, in one line and before any work, an output file that exists (unless
    ``overwrite``), is a folder or cannot be written; ``example`` is a file name to suggest.
    Missing parent folders are made when the file is written (every command's rule)."""
    from reslearn.atomic import check_writable

    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as {example}")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")
    check_writable(path)


def paragraph(text: str) -> str:
    """Wrap a help paragraph for formatters that keep the text's own line breaks."""
    return textwrap.fill(text, width=min(shutil.get_terminal_size().columns, 100) - 2)
