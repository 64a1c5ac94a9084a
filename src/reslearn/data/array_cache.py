"""The array cache: decoded image folders stored as .npy files under a key that names their source.

``<cache_dir>/arrays/<name>-<key>/`` holds the arrays of one state of one folder (the key hashes
every file's path, size and mtime), one subfolder per variant (``native`` size, or resized to
``<S>px``). A variant holds one ``.npy`` file per array and a ``meta.json`` written last, with a
sha256 digest of every array; every file goes to a temporary name in the same folder and is
moved into place with ``os.replace``, so an interrupted run leaves nothing that reads as
complete, and two runs filling the same entry at once both leave a valid one.

An entry is checked before use: its arrays against their digests (``load_entry``), and against
the folder it stands for (``check_entry``: shapes, dtypes, label range, class list). One that
fails raises ``DamagedEntry``; the caller drops it and decodes the folder again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from reslearn.atomic import atomic_write
from reslearn.paths import default_cache_dir  # noqa: F401  (imported from here by data)

#: Bumped when the decoding or the entry's format changes, so old entries are no longer found
#: (2: EXIF orientation; 3: a digest of every array in meta.json).
CACHE_VERSION = 3


class DamagedEntry(Exception):
    """A cache entry that is there but cannot be trusted; the message says why."""


def cache_key(*parts: Any) -> str:
    """A short hex digest of JSON-serialisable ``parts`` and the cache format version."""
    blob = json.dumps([CACHE_VERSION, *parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def entry_dir(cache_dir: str | os.PathLike, name: str, key: str) -> Path:
    """The folder of the entries for one key; ``name`` only makes it readable to people."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:40] or "data"
    return Path(cache_dir).expanduser().resolve() / "arrays" / f"{safe}-{key}"


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()


def save_entry(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Store ``arrays`` and ``meta`` in ``folder``; the entry is complete once meta.json exists."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)
    for name, array in arrays.items():
        atomic_write(
            folder / f"{name}.npy",
            lambda f, a=array: np.save(f, a, allow_pickle=False),
            durable=False,
        )
    digests = {name: array_digest(array) for name, array in arrays.items()}
    meta = {**meta, "cache_version": CACHE_VERSION, "arrays": sorted(arrays), "digests": digests}
    text = json.dumps(meta, indent=1).encode()
    atomic_write(folder / "meta.json", lambda f: f.write(text), durable=False)


def load_entry(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta of a complete entry, or None when there is none (yet).

    ``DamagedEntry`` when one is there but a file cannot be read or an array differs from the
    digest written with it. The arrays are memory-mapped copy-on-write (writing to one never
    touches the file); checking the digests reads each once."""
    try:
        text = (folder / "meta.json").read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as error:
        raise DamagedEntry(f"meta.json cannot be read: {error}") from None
    try:
        meta = json.loads(text)
    except ValueError:
        raise DamagedEntry("meta.json is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("cache_version") != CACHE_VERSION:
        return None
    names, digests = meta.get("arrays"), meta.get("digests")
    if not isinstance(names, list) or not isinstance(digests, dict):
        raise DamagedEntry("meta.json lists no arrays or no digests")
    arrays = {}
    for name in names:
        try:
            arrays[name] = np.load(folder / f"{name}.npy", allow_pickle=False, mmap_mode="c")
        except (OSError, ValueError, TypeError, EOFError) as error:
            raise DamagedEntry(f"{name}.npy cannot be read: {error}") from None
        if digests.get(name) != array_digest(arrays[name]):
            raise DamagedEntry(f"{name}.npy differs from the digest written with it")
    return arrays, meta


def check_entry(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], splits: list[str], classes: list[str]
) -> None:
    """``DamagedEntry`` unless the entry holds, for each split, uint8 images (N, H, W, 1 or 3)
    and N int64 labels within ``classes``, which must be the classes it was written with."""
    if meta.get("classes") != classes:
        raise DamagedEntry("its class list is not the folder's")
    sizes = set()
    for split in splits:
        images, labels = arrays.get(f"{split}_images"), arrays.get(f"{split}_labels")
        if images is None or labels is None:
            raise DamagedEntry(f"it has no {split} images or labels")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
            raise DamagedEntry(
                f"{split}_images.npy is {images.dtype} {images.shape}, not uint8 (N, H, W, C)"
            )
        if labels.dtype != np.int64 or labels.shape != images.shape[:1]:
            raise DamagedEntry(
                f"{split}_labels.npy is {labels.dtype} {labels.shape}, not int64 "
                f"({len(images)},) for {len(images)} images"
            )
        outside = labels[(labels < 0) | (labels >= len(classes))]
        if outside.size:
            raise DamagedEntry(
                f"{split}_labels.npy holds label {int(outside[0])} for {len(classes)} classes"
            )
        sizes.add(images.shape[1:])
    if len(sizes) > 1:
        raise DamagedEntry(f"its splits' images differ in shape ({', '.join(map(str, sizes))})")


def drop_entry(folder: Path) -> None:
    """Delete a damaged entry (what cannot be deleted is overwritten by the next save)."""
    shutil.rmtree(folder, ignore_errors=True)


def remove_stale(folder: Path, same: dict[str, Any]) -> None:
    """Delete the entries beside ``folder`` whose variants' meta holds the values in ``same``.

    A folder that changed leaves its old entries unreachable; this keeps one per source instead
    of one per state the folder was ever in.
    """
    for other in folder.parent.glob(f"{folder.name.rsplit('-', 1)[0]}-*"):
        if other == folder or not other.is_dir():
            continue
        for meta_file in other.glob("*/meta.json"):
            try:
                meta = json.loads(meta_file.read_text())
            except (OSError, ValueError):
                continue  # another run may be writing it right now
            if isinstance(meta, dict) and all(meta.get(k) == v for k, v in same.items()):
                shutil.rmtree(other, ignore_errors=True)
                break
