"""Datasets from disk as uint8 arrays: CIFAR's python format, Fashion-MNIST IDX, image folders.

``load_dataset`` takes a path or a name (``cifar10``, ``cifar100``, ``fashion-mnist``) and returns
a ``Dataset`` of (N, H, W, C) uint8 images and int64 labels. Image folders are decoded once, in
several processes, and cached as arrays keyed by every file's path, size and mtime; the official
formats are read directly, which takes well under a second.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reslearn.data.cache import (
    cache_key,
    default_cache_dir,
    entry_dir,
    load_entry,
    remove_stale,
    save_entry,
)
from reslearn.data.decode import BadImageError, SizesDiffer, decode_images, resize_images
from reslearn.data.formats import FASHION_MNIST_URL, IDX_FILES, idx_path, read_cifar, read_fashion
from reslearn.errors import SettingError
from reslearn.text import display_name

__all__ = ["BadImageError", "Dataset", "ImageArrays", "default_cache_dir", "load_dataset"]

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's package
DOWNLOAD_TIMEOUT_S = 20.0  # per socket operation, so an unreachable server fails quickly
_ALIASES = {
    "cifar10": "cifar10", "cifar-10": "cifar10", "cifar100": "cifar100", "cifar-100": "cifar100",
    "fashion-mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
}  # fmt: skip
_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "fashion-mnist": FASHION_MNIST_URL,
}
_LAYOUTS = (
    "a CIFAR-10 'cifar-10-batches-py' folder, a CIFAR-100 'cifar-100-python' folder, a folder of "
    "Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...), or an image folder with "
    "train/<class>/ and test/<class>/ (or val/<class>/) subfolders"
)


@dataclass
class ImageArrays:
    """One split: uint8 images (N, H, W, C) with C 1 or 3, int64 labels (N,), class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]


@dataclass
class Dataset:
    """A train split, an optional test split, and where they came from."""

    name: str  # "cifar10", "cifar100", "fashion-mnist", or the image folder's name
    source: str  # resolved absolute path of what was read
    train: ImageArrays
    test: ImageArrays | None  # None when an image folder has no test/ (or val/) split
    skipped: list[str]  # bad image files skipped (only with skip_bad_images=True)


def load_dataset(
    spec: str,
    *,
    image_size: int | None = None,
    fallback_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> Dataset:
    """Load a dataset from a path or a name; ``image_size`` makes every image that square size.

    Without ``image_size`` an image folder keeps its images' size when they all share one, and
    otherwise uses ``fallback_size`` (with a warning). Image folders are cached in ``cache_dir``
    (default ``default_cache_dir()``); ``workers`` processes decode them (0 or 1: in-process).
    """
    for option, value in (("image_size", image_size), ("fallback_size", fallback_size)):
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(f"{option} must be a positive integer; got {value!r}")
    if workers is not None and (type(workers) is not int or workers < 0):
        raise ValueError(f"workers must be an integer >= 0; got {workers!r}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = Path(os.fspath(spec)).expanduser()
    alias = _ALIASES.get(str(spec).strip().lower().replace("_", "-"))
    if alias and not path.exists():
        path = _named_dataset(alias, cache)
    kind, folder = _locate(path)
    if kind == "folder":
        workers = default_workers() if workers is None else workers
        return _load_folder(
            folder, image_size, fallback_size, cache, skip_bad_images, workers, progress
        )
    classes, *splits = read_cifar(folder, kind) if kind != "idx" else read_fashion(folder)
    if image_size is not None:
        splits = [(resize_images(images, image_size), labels) for images, labels in splits]
    train, test = (ImageArrays(images, labels, list(classes)) for images, labels in splits)
    return Dataset("fashion-mnist" if kind == "idx" else kind, str(folder), train, test, [])


def default_workers(share: int = 1) -> int:
    """Decoding processes: the usable CPU cores (shared among ``share`` processes on this
    machine, e.g. torchrun's LOCAL_WORLD_SIZE), at most 8."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min((usable or 1) // share, 8))


# --- finding the data -------------------------------------------------------------------------


def _named_dataset(name: str, cache: Path) -> Path:
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
    """Which format the files directly inside ``folder`` are in, if any."""
    if (folder / "batches.meta").is_file():
        return "cifar10"
    if (folder / "meta").is_file() and (folder / "train").is_file():
        return "cifar100"
    if idx_path(folder, IDX_FILES[0]) is not None:
        return "idx"
    if (folder / "train").is_dir():
        return "folder"
    return None


def _locate(path: Path) -> tuple[str, Path]:
    """(format, folder) for ``path`` itself or the one dataset folder inside it."""
    if not path.exists():
        raise FileNotFoundError(
            f"dataset '{path}' not found: no such file or folder; pass a folder holding "
            f"{_LAYOUTS}, or one of the names cifar10, cifar100, fashion-mnist"
        )
    path = path.resolve()
    if path.is_file():
        archive = path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip"))
        hint = " (an archive: extract it first)" if archive else ""
        raise ValueError(f"dataset '{path}' is a file{hint}; pass a folder holding {_LAYOUTS}")
    kind = _layout(path)
    if kind:
        return kind, path
    inside = [p for p in _visible(path) if p.is_dir()] + [path / "FashionMNIST" / "raw"]
    found = [(k, p) for p in inside if (k := _layout(p))]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(f"'{p.relative_to(path)}'" for _, p in found)
        raise ValueError(f"'{path}' holds several datasets ({names}); pass one of them")
    if not _visible(path):
        raise ValueError(f"data folder '{path}' is empty; it should hold {_LAYOUTS}")
    split = path.name in ("train", "test", "val")
    hint = f" (it looks like a split: pass its parent '{path.parent}')" if split else ""
    raise ValueError(f"'{path}' has no train/ folder{hint}; expected {_LAYOUTS}")


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


# --- image folders ------------------------------------------------------------------------------


@dataclass
class _Split:
    folder: Path
    files: list[str]
    labels: list[int]
    listing: list[tuple[str, int, int]]  # (path relative to the root, size, mtime_ns)


def _scan_split(folder: Path, root: Path, classes: list[str] | None) -> tuple[list[str], _Split]:
    """The class names and every candidate file of one split; hidden files are ignored."""
    found = [p.name for p in _visible(folder) if p.is_dir()]
    if classes is None:
        if not found:
            raise ValueError(
                f"image folder '{folder}' has no class folders; expected {folder}/<class>/<images>"
            )
        if len(found) < 2:  # one class trains to a test error of 0.0 that means nothing
            raise ValueError(
                f"image folder '{folder}' has one class folder ('{display_name(found[0])}'); "
                "a classifier needs at least 2 classes: add a folder of images for each class"
            )
        classes = found
    elif found != classes:
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        raise ValueError(
            f"the classes of '{folder}' differ from those of '{root / 'train'}': "
            f"missing {', '.join(missing) or 'none'}; not in train: {', '.join(extra) or 'none'}"
        )
    split, prefix = _Split(folder, [], [], []), folder.name
    for label, name in enumerate(classes):
        with os.scandir(folder / name) as scan:
            entries = [e for e in scan if not e.name.startswith(".") and e.is_file()]
        if not entries:
            raise ValueError(
                f"image folder '{folder}' has no images for class '{name}' ({folder / name} is "
                "empty); add images or remove the folder"
            )
        for entry in sorted(entries, key=lambda e: e.name):
            stat = entry.stat()
            split.files.append(entry.path)
            split.labels.append(label)
            relative = f"{prefix}/{name}/{entry.name}"
            split.listing.append((relative, stat.st_size, stat.st_mtime_ns))
    return classes, split


def _load_folder(
    root: Path,
    image_size: int | None,
    fallback_size: int,
    cache: Path,
    skip_bad_images: bool,
    workers: int,
    progress: bool,
) -> Dataset:
    """An image folder, from the array cache when no file in it changed since it was decoded.

    Images kept at their own size are stored as the ``native`` variant, so a later request for
    exactly that size (an evaluation after training, say) reuses them.
    """
    test_dir = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
    classes, train = _scan_split(root / "train", root, None)
    splits = {"train": train}
    if test_dir is not None:
        splits["test"] = _scan_split(test_dir, root, classes)[1]
    listings = {name: split.listing for name, split in splits.items()}
    entry = entry_dir(cache, root.name, cache_key("folder", str(root), listings, skip_bad_images))
    same = {"source": str(root), "skip_bad_images": skip_bad_images}
    native = load_entry(entry / "native")
    mixed = native[1]["mixed"] if native is not None and "mixed" in native[1] else None
    size = fallback_size if image_size is None and mixed else image_size
    found = None
    if native is not None and not mixed:
        if image_size is None or native[0]["train_images"].shape[1:3] == (size, size):
            found = native
    if found is None and size is not None:
        found = load_entry(entry / f"{size}px")
    if found is None:
        groups = {name: split.files for name, split in splits.items()}
        options = {"skip_bad": skip_bad_images, "workers": workers, "progress": progress}
        try:
            decoded, skipped, sizes = decode_images(groups, size, **options)
        except SizesDiffer as error:
            mixed, size = sorted(error.sizes)[:2], fallback_size
            _save(entry, "native", {}, {**same, "mixed": mixed})
            decoded, skipped, sizes = decode_images(groups, size, **options)
        arrays = _labelled(splits, classes, decoded)
        variant = "native" if size is None or sizes == {(size, size)} else f"{size}px"
        found = arrays, {**same, "classes": classes, "skipped": skipped}
        _save(entry, variant, *found)
    if mixed:
        shown = " and ".join(f"{h}x{w}" for h, w in mixed)
        warnings.warn(
            f"images in '{root}' have different sizes (e.g. {shown}); making every image "
            f"{size}x{size} (shorter side to {size}, centre crop); pass --image-size to choose "
            "the size",
            stacklevel=3,
        )
    arrays, skipped = found[0], list(found[1]["skipped"])
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image file(s) in '{root}', e.g. '{skipped[0]}' "
            "(all are listed in Dataset.skipped)",
            stacklevel=3,
        )
    result = {
        name: ImageArrays(arrays[f"{name}_images"], arrays[f"{name}_labels"], list(classes))
        for name in splits
    }
    return Dataset(root.name, str(root), result["train"], result.get("test"), skipped)


def _labelled(splits: dict[str, _Split], classes: list[str], decoded) -> dict[str, np.ndarray]:
    """Images and the labels of the files that were read, checking no class lost every file."""
    arrays = {}
    for name, split in splits.items():
        labels = np.asarray(split.labels, dtype=np.int64)[decoded[name].kept]
        counts = np.bincount(labels, minlength=len(classes))
        if not counts.all():
            empty = classes[int(np.argmin(counts))]
            raise ValueError(
                f"image folder '{split.folder}' has no readable images for class '{empty}' "
                "(every file in it was skipped); add images or remove the folder"
            )
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = decoded[name].images, labels
    return arrays


def _save(entry: Path, variant: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    try:
        save_entry(entry / variant, arrays, meta)
        remove_stale(entry, {"source": meta["source"], "skip_bad_images": meta["skip_bad_images"]})
    except OSError as error:  # a read-only or full disk costs time next run, nothing more
        warnings.warn(
            f"could not write the array cache '{entry}' ({error}); the folder will be decoded "
            "again next time",
            stacklevel=4,
        )


def load_eval_sample(
    spec: str,
    *,
    image_size: int,
    count: int | None,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
) -> ImageArrays:
    """A seeded random sample of ``count`` images (all when None) from the test split, or the
    training split when there is none, with the data's classes; for the analysis probes."""
    from reslearn.data.sampling import sample_indices

    dataset = load_dataset(spec, image_size=image_size, cache_dir=cache_dir, workers=workers)
    split = dataset.test if dataset.test is not None else dataset.train
    chosen = sample_indices(len(split.labels), count)  # random: folders are listed by class
    return ImageArrays(split.images[chosen], split.labels[chosen], list(split.classes))


@dataclass
class FolderListing:
    """An image folder's files, without decoding them: what the streaming loader reads."""

    name: str
    root: str
    classes: list[str]
    splits: dict[str, tuple[list[str], np.ndarray]]  # "train"/"test": (paths, int64 labels)


def list_image_folder(spec: str | os.PathLike) -> FolderListing:
    """The files and labels of an image folder with train/<class>/ and test/ or val/<class>/
    (ImageNet's layout), listed but not read."""
    kind, root = _locate(Path(os.fspath(spec)).expanduser())
    if kind != "folder":
        raise SettingError(
            f"'{root}' is a {kind} folder, not an image folder; the streaming loader reads "
            "image folders, train/ with a folder per class (set <loader> to memory for this data)"
        )
    classes, train = _scan_split(root / "train", root, None)
    splits = {"train": (train.files, np.asarray(train.labels, dtype=np.int64))}
    test_dir = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
    if test_dir is not None:
        test = _scan_split(test_dir, root, classes)[1]
        splits["test"] = (test.files, np.asarray(test.labels, dtype=np.int64))
    return FolderListing(root.name, str(root), classes, splits)
