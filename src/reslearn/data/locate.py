"""Finding a dataset: a name (``cifar10``, ``cifar100``, ``fashion-mnist``) found in the cache
or downloaded with torchvision, and a path told apart by its layout (CIFAR's python format,
Fashion-MNIST IDX files, an image folder), itself or as the one dataset folder inside it.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

from reslearn.data.registry import (
    ALIASES,
    BY_NAME,
    IDX_FILES,
    LAYOUTS,
    detect_format,
    named_sets,
)

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's package
DOWNLOAD_TIMEOUT_S = 20.0  # per socket operation, so an unreachable server fails quickly
__all__ = ["ALIASES", "LAYOUTS", "locate", "named_dataset", "visible"]
_URLS = {f.dataset: f.url for f in BY_NAME.values() if f.url}


def named_dataset(name: str, cache: Path) -> Path:
    """The folder of a named dataset, downloaded with torchvision when it is not there yet."""
    root = cache.resolve() / "datasets"
    if name == "fashion-mnist":
        places = [FASHION_MNIST_SYSTEM_DIR, root / "fashion-mnist", root / "FashionMNIST" / "raw"]
        found = [p for p in places if _layout(p) == "idx"]
        if found:
            return found[0]
        target = places[1]
    else:
        target = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
        if target.is_dir():
            return target
    try:
        _download(name, root)
    except Exception as error:  # no network, a proxy, a bad checksum, no torchvision: one message
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        if name == "fashion-mnist":
            files = ", ".join(f"{f}.gz" for f in IDX_FILES)
            raise FileNotFoundError(
                f"Fashion-MNIST is not in {places[0]} or {target} and downloading it failed "
                f"({reason}); run `sudo apt-get install dataset-fashion-mnist`, or download "
                f"{files} from {_URLS[name]} into {target}"
            ) from None
        archive = _URLS[name].rsplit("/", 1)[1]
        raise FileNotFoundError(
            f"{name.upper().replace('CIFAR', 'CIFAR-')} is not in {target} and downloading it "
            f"failed ({reason}); download {_URLS[name]} and extract it into {root} "
            f"(tar -xzf {archive} -C {root}) so that {target} exists"
        ) from None
    return target if name != "fashion-mnist" else root / "FashionMNIST" / "raw"


def _download(name: str, root: Path) -> None:
    """Fetch a named dataset into ``root`` with torchvision, which checks its MD5 sums."""
    from torchvision import datasets

    builder = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}.get(
        name, datasets.FashionMNIST
    )
    root.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib would otherwise wait forever
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torchvision prints its progress
            builder(root=str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def _layout(folder: Path) -> str | None:
    """Which format (its registry name) the files directly inside ``folder`` are in, if any."""
    found = detect_format(folder)
    return found.name if found else None


def locate(path: Path) -> tuple[str, Path]:
    """(format, folder) for ``path`` itself or the one dataset folder inside it."""
    if not path.exists():
        raise FileNotFoundError(
            f"dataset '{path}' not found: no such file or folder; pass a folder holding "
            f"{LAYOUTS}, or one of the names {', '.join(named_sets())}"
        )
    path = path.resolve()
    if path.is_file():
        archive = path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip"))
        hint = " (an archive: extract it first)" if archive else ""
        raise ValueError(f"dataset '{path}' is a file{hint}; pass a folder holding {LAYOUTS}")
    kind = _layout(path)
    if kind:
        return kind, path
    inside = [p for p in visible(path) if p.is_dir()] + [path / "FashionMNIST" / "raw"]
    found = [(k, p) for p in inside if (k := _layout(p))]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(f"'{p.relative_to(path)}'" for _, p in found)
        raise ValueError(f"'{path}' holds several datasets ({names}); pass one of them")
    if not visible(path):
        raise ValueError(f"data folder '{path}' is empty; it should hold {LAYOUTS}")
    split = path.name in ("train", "test", "val")
    hint = f" (it looks like a split: pass its parent '{path.parent}')" if split else ""
    raise ValueError(f"'{path}' has no train/ folder{hint}; expected {LAYOUTS}")


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
