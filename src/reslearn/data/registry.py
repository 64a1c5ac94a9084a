"""The data formats ``--data`` reads, one entry each: how a folder in the format is recognised,
how it is read, what it is called, where a named set of it is downloaded from, and the lines
that describe it in the help. A new format is one entry of ``FORMATS`` (and its reader).

This module imports nothing heavy: the command line's help reads it before torch or numpy are
loaded; a reader imports what it needs when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_path(folder: Path, base: str) -> Path | None:
    """``folder/base`` or ``folder/base.gz``, whichever exists; None when neither does."""
    for name in (base, base + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass(frozen=True)
class DataFormat:
    """One format of data folder."""

    name: str  # what locate() calls it: also the data set's name where it is one set
    detect: Callable[[Path], bool]  # do the files directly inside this folder have the format?
    layout: str  # the folder as the "expected ..." errors describe it
    reader: str | None = None  # "module:function" (folder, *reader_args) -> (classes, train, test)
    reader_args: tuple[Any, ...] = ()
    dataset: str | None = None  # the data set's name (None: the folder's own name)
    aliases: tuple[str, ...] = ()  # names --data accepts for the named set
    url: str | None = None  # where the named set is downloaded from
    help: tuple[str, str] | None = None  # (what to pass, what it is): a line of train's epilog
    streams: bool = False  # whether the streaming loader reads it

    def read(self, folder: Path) -> Any:
        """(classes, (train images, labels), (test images, labels)) of a folder in the format
        (an image folder has its own loader, with a cache: ``data.sources``)."""
        if self.reader is None:
            raise ValueError(f"{self.name} folders are not read whole; use reslearn.data.sources")
        module, function = self.reader.split(":")
        return getattr(importlib.import_module(module), function)(folder, *self.reader_args)


FORMATS = (
    DataFormat(
        "cifar10",
        detect=lambda folder: (folder / "batches.meta").is_file(),
        layout="a CIFAR-10 'cifar-10-batches-py' folder",
        reader="reslearn.data.formats:read_cifar",
        reader_args=("cifar10",),
        dataset="cifar10",
        aliases=("cifar10", "cifar-10"),
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        help=("PATH/cifar-10-batches-py", "the official CIFAR python format"),
    ),
    DataFormat(
        "cifar100",
        detect=lambda folder: (folder / "meta").is_file() and (folder / "train").is_file(),
        layout="a CIFAR-100 'cifar-100-python' folder",
        reader="reslearn.data.formats:read_cifar",
        reader_args=("cifar100",),
        dataset="cifar100",
        aliases=("cifar100", "cifar-100"),
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
    DataFormat(
        "idx",
        detect=lambda folder: idx_path(folder, IDX_FILES[0]) is not None,
        layout="a folder of Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...)",
        reader="reslearn.data.formats:read_fashion",
        dataset="fashion-mnist",
        aliases=("fashion-mnist", "fashionmnist"),
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        help=("PATH", "Fashion-MNIST's IDX files (.gz or not)"),
    ),
    DataFormat(
        "folder",
        detect=lambda folder: (folder / "train").is_dir(),
        layout="an image folder with train/<class>/ and test/<class>/ (or val/<class>/) "
        "subfolders",
        help=("PATH", "train/<class>/* and test/<class>/* images"),
        streams=True,
    ),
)
BY_NAME = {f.name: f for f in FORMATS}
#: A named set (as --data spells it, lower case) -> the format that holds it.
ALIASES = {alias: f.dataset for f in FORMATS for alias in f.aliases if f.dataset}
#: Every layout, as the "expected ..." errors list them.
LAYOUTS = ", ".join(f.layout for f in FORMATS[:-1]) + ", or " + FORMATS[-1].layout


def detect_format(folder: Path) -> DataFormat | None:
    """The format of the files directly inside ``folder``, if any (the first that matches)."""
    return next((f for f in FORMATS if f.detect(folder)), None)


def named_sets() -> list[str]:
    """The named sets, each by its own name: cifar10, cifar100, fashion-mnist."""
    return [f.dataset for f in FORMATS if f.aliases and f.dataset]


def epilog_lines() -> list[str]:
    """The lines of ``reslearn train --help`` that say what --data takes."""
    lines = [f"  {' | '.join(named_sets()):<37}named sets (cached; downloaded when online)"]
    lines += [f"  {what:<37}{says}" for f in FORMATS if f.help for what, says in [f.help]]
    return lines
