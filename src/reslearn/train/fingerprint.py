"""A run's data, summed up so that a resumed run can tell whether it is still the same data.

config.json's "data" record keeps a fingerprint: the classes, the images per class of each split
(before any ``--val-split``), and a SHA-256 digest -- of the decoded images and labels for the
in-memory loader (so any changed, added or removed image changes it), of the file list (paths
relative to the folder, labels) for the streaming loader (which never reads every file up
front: there a file changed in place goes unnoticed). ``--resume`` compares it with the data it
loads: other classes are always refused, another image set unless ``--allow-data-change``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from reslearn.data.sources import Dataset, FolderListing

FORMAT = "reslearn-data/1"


def _counts(labels: np.ndarray, classes: int) -> list[int]:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes).tolist()


def dataset_fingerprint(dataset: Dataset) -> dict[str, Any]:
    """The fingerprint of a decoded data set (its images' bytes included)."""
    classes = list(dataset.train.classes)
    splits = {"train": dataset.train}
    if dataset.test is not None:
        splits["test"] = dataset.test
    digest = hashlib.sha256()
    for name, split in splits.items():
        images = np.ascontiguousarray(split.images)
        labels = np.ascontiguousarray(split.labels, dtype=np.int64)
        digest.update(f"{name}:{images.shape}:{images.dtype}".encode())
        digest.update(labels.tobytes())
        digest.update(memoryview(images).cast("B"))
    return {
        "format": FORMAT,
        "classes": classes,
        "counts": {name: _counts(s.labels, len(classes)) for name, s in splits.items()},
        "digest": digest.hexdigest(),
        "digest_of": "decoded images and labels",
    }


def listing_fingerprint(listing: FolderListing) -> dict[str, Any]:
    """The fingerprint of a listed (not decoded) image folder: its file names and labels."""
    classes = list(listing.classes)
    root = Path(listing.root)
    digest = hashlib.sha256()
    for name, (files, labels) in listing.splits.items():
        digest.update(f"{name}:{len(files)}\n".encode())
        for path, label in zip(files, np.asarray(labels).tolist(), strict=True):
            try:
                relative = Path(path).relative_to(root).as_posix()
            except ValueError:
                relative = str(path)
            digest.update(f"{relative}\t{label}\n".encode())
    counts = {name: _counts(labels, len(classes)) for name, (_, labels) in listing.splits.items()}
    return {
        "format": FORMAT,
        "classes": classes,
        "counts": counts,
        "digest": digest.hexdigest(),
        "digest_of": "file list and labels",
    }


def _count_changes(before: dict[str, list[int]], now: dict[str, list[int]], classes) -> str:
    parts = []
    for split in sorted(set(before) | set(now)):
        old, new = before.get(split), now.get(split)
        if old is None or new is None:
            parts.append(f"the {split} split {'appeared' if old is None else 'is gone'}")
            continue
        if old == new:
            continue
        changed = [
            f"{name} {b} -> {n}" for name, b, n in zip(classes, old, new, strict=False) if b != n
        ]
        shown = ", ".join(changed[:3])
        if len(changed) > 3:
            shown += f", ... ({len(changed)} classes)"
        parts.append(f"{split} has {sum(new)} images, had {sum(old)} ({shown})")
    return "; ".join(parts)


def data_change(saved: dict[str, Any], now: dict[str, Any]) -> tuple[str, str] | None:
    """How the data changed since ``saved`` (config.json's "data" record) was written, as
    (kind, description) with kind "classes" or "images"; None when it is the same.

    A run saved before fingerprints existed is compared on its classes and image counts.
    """
    old_classes, new_classes = list(saved.get("classes", [])), list(now["classes"])
    if old_classes != new_classes:
        added = [c for c in new_classes if c not in old_classes]
        gone = [c for c in old_classes if c not in new_classes]
        what = []
        if added:
            what.append(f"added {', '.join(added[:5])}" + (" ..." if len(added) > 5 else ""))
        if gone:
            what.append(f"removed {', '.join(gone[:5])}" + (" ..." if len(gone) > 5 else ""))
        return "classes", "; ".join(what) or "the class order changed"
    fingerprint = saved.get("fingerprint")
    if fingerprint is None:  # an older run: only the sizes it recorded can be compared
        return None
    if fingerprint.get("counts") != now["counts"]:
        return "images", _count_changes(fingerprint["counts"], now["counts"], new_classes)
    if fingerprint.get("digest") != now["digest"]:
        return "images", f"the same number of images, but other ones ({now['digest_of']} differ)"
    return None


def legacy_sizes_change(saved: dict[str, Any], train_images: int, eval_images: dict) -> str | None:
    """For a run saved before fingerprints: whether its recorded split sizes still hold."""
    if "fingerprint" in saved or "train_images" not in saved:
        return None
    parts = []
    if saved["train_images"] != train_images:
        parts.append(f"{train_images} training images, had {saved['train_images']}")
    for name, count in eval_images.items():
        before = saved.get("eval_images", {}).get(name)
        if before is not None and before != count:
            parts.append(f"{count} {name} images, had {before}")
    return "; ".join(parts) or None
