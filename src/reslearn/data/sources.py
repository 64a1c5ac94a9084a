"""Datasets from disk as uint8 arrays: CIFAR's python format, Fashion-MNIST IDX, image folders.

``load_dataset`` takes a path or a name (``cifar10``, ``cifar100``, ``fashion-mnist``) and returns
a ``Dataset`` of (N, H, W, C) uint8 images and int64 labels. Image folders are decoded once, in
several processes, and cached as arrays keyed by every file's path, size and mtime; the official
formats are read directly, which takes well under a second.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reslearn.data.array_cache import (
    DamagedEntry,
    cache_key,
    check_entry,
    default_cache_dir,
    drop_entry,
    entry_dir,
    load_entry,
    remove_stale,
    save_entry,
)
from reslearn.data.decode import BadImageError, SizesDiffer, decode_images, resize_images
from reslearn.data.locate import ALIASES, locate, named_dataset, visible
from reslearn.data.registry import BY_NAME
from reslearn.errors import SettingError
from reslearn.text import display_name

__all__ = ["BadImageError", "Dataset", "ImageArrays", "default_cache_dir", "load_dataset"]


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
    alias = ALIASES.get(str(spec).strip().lower().replace("_", "-"))
    if alias and not path.exists():
        path = named_dataset(alias, cache)
    kind, folder = locate(path)
    if kind == "folder":
        workers = default_workers() if workers is None else workers
        return _load_folder(
            folder, image_size, fallback_size, cache, skip_bad_images, workers, progress
        )
    data_format = BY_NAME[kind]
    classes, *splits = data_format.read(folder)
    if image_size is not None:
        splits = [(resize_images(images, image_size), labels) for images, labels in splits]
    train, test = (ImageArrays(images, labels, list(classes)) for images, labels in splits)
    return Dataset(data_format.dataset or kind, str(folder), train, test, [])


def default_workers(share: int = 1) -> int:
    """Decoding processes: the usable CPU cores (shared among ``share`` processes on this
    machine, e.g. torchrun's LOCAL_WORLD_SIZE), at most 8."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min((usable or 1) // share, 8))


# --- image folders ------------------------------------------------------------------------------


@dataclass
class _Split:
    folder: Path
    files: list[str]
    labels: list[int]
    listing: list[tuple[str, int, int]]  # (path relative to the root, size, mtime_ns)


def _scan_split(folder: Path, root: Path, classes: list[str] | None) -> tuple[list[str], _Split]:
    """The class names and every candidate file of one split; hidden files are ignored."""
    found = [p.name for p in visible(folder) if p.is_dir()]
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


def _scan_folder(root: Path) -> tuple[list[str], dict[str, _Split]]:
    """The class names and the ``train`` and (from test/ or else val/, if there) ``test`` splits
    of an image folder."""
    test_dir = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
    classes, train = _scan_split(root / "train", root, None)
    splits = {"train": train}
    if test_dir is not None:
        splits["test"] = _scan_split(test_dir, root, classes)[1]
    return classes, splits


def _load_folder(
    root: Path,
    image_size: int | None,
    fallback_size: int,
    cache: Path,
    skip_bad_images: bool,
    workers: int,
    progress: bool,
) -> Dataset:
    """An image folder, from the array cache when no file in it changed since it was decoded."""
    classes, splits = _scan_folder(root)
    listings = {name: split.listing for name, split in splits.items()}
    entry = entry_dir(cache, root.name, cache_key("folder", str(root), listings, skip_bad_images))
    found, size, mixed = _from_cache(entry, image_size, fallback_size, (list(splits), classes))
    if found is None:
        options = {"skip_bad": skip_bad_images, "workers": workers, "progress": progress}
        found, size, mixed = _decode_folder(
            entry, root, splits, classes, size, mixed, fallback_size, options
        )
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


_Entry = tuple[dict[str, np.ndarray], dict]  # a cache entry's arrays and metadata


def _from_cache(
    entry: Path, image_size: int | None, fallback_size: int, expected: tuple[list, list]
) -> tuple[_Entry | None, int | None, list | None]:
    """(the cached arrays or None, the size to decode at, the two sizes found when the folder's
    images differ in size or None); ``expected``: the split names and classes they must have.

    Images kept at their own size are stored as the ``native`` variant, so a later request for
    exactly that size (an evaluation after training, say) reuses them; a ``native`` entry
    without arrays records that the images differ in size."""
    native = _cached(entry / "native", expected)
    mixed = native[1]["mixed"] if native is not None and "mixed" in native[1] else None
    size = fallback_size if image_size is None and mixed else image_size
    found = None
    if native is not None and not mixed:
        if image_size is None or native[0]["train_images"].shape[1:3] == (size, size):
            found = native
    if found is None and size is not None:
        found = _cached(entry / f"{size}px", expected)
    return found, size, mixed


def _cached(folder: Path, expected: tuple[list, list]) -> _Entry | None:
    """A cache entry checked before use (``expected``: split names and classes), or None; a
    damaged one is dropped with a warning, and the folder is decoded again."""
    try:
        found = load_entry(folder)
        if found is not None and found[0]:  # a native entry without arrays: mixed sizes
            check_entry(*found, *expected)
    except DamagedEntry as damage:
        drop_entry(folder)
        warnings.warn(
            f"the decoded-data cache entry '{folder}' is damaged ({damage}); it was removed "
            "and the image folder is decoded again",
            stacklevel=5,  # _cached, _from_cache, _load_folder, load_dataset, its caller
        )
        return None
    return found


def _decode_folder(
    entry: Path,
    root: Path,
    splits: dict[str, _Split],
    classes: list[str],
    size: int | None,
    mixed: list | None,
    fallback_size: int,
    options: dict,
) -> tuple[_Entry, int | None, list | None]:
    """Decode every split (at ``size``, or at their own size when they share one, else at
    ``fallback_size``) and cache the arrays; returns them with the size and ``mixed``."""
    same = {"source": str(root), "skip_bad_images": options["skip_bad"]}
    groups = {name: split.files for name, split in splits.items()}
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
    return found, size, mixed


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
            stacklevel=5,  # _save, _decode_folder, _load_folder, load_dataset, its caller
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
    kind, root = locate(Path(os.fspath(spec)).expanduser())
    if not BY_NAME[kind].streams:
        raise SettingError(
            f"'{root}' is a {kind} folder, not an image folder; the streaming loader reads "
            "image folders, train/ with a folder per class (set <loader> to memory for this data)"
        )
    classes, scanned = _scan_folder(root)
    splits = {
        name: (split.files, np.asarray(split.labels, dtype=np.int64))
        for name, split in scanned.items()
    }
    return FolderListing(root.name, str(root), classes, splits)
