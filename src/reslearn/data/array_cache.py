"""The array cache: decoded image folders stored as .npy files under a key that names their source.

``<cache_dir>/arrays/<name>-<key>/`` holds the arrays of one state of one folder (the key hashes
every file's path, size and mtime), one subfolder per variant (``native`` size, or resized to
``<S>px``). A variant holds one ``.npy`` file per array and a ``meta.json`` written last; every
file goes to a temporary name in the same folder and is moved into place with ``os.replace``, so
an interrupted run leaves nothing that reads as complete, and two runs filling the same entry at
once both leave a valid one.
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

#: Bumped when the decoding changes, so old entries are no longer found (2: EXIF orientation).
CACHE_VERSION = 2


def cache_key(*parts: Any) -> str:
    """A short hex digest of JSON-serialisable ``parts`` and the cache format version."""
    blob = json.dumps([CACHE_VERSION, *parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def entry_dir(cache_dir: str | os.PathLike, name: str, key: str) -> Path:
    """The folder of the entries for one key; ``name`` only makes it readable to people."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:40] or "data"
    return Path(cache_dir).expanduser().resolve() / "arrays" / f"{safe}-{key}"


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
    meta = {**meta, "cache_version": CACHE_VERSION, "arrays": sorted(arrays)}
    text = json.dumps(meta, indent=1).encode()
    atomic_write(folder / "meta.json", lambda f: f.write(text), durable=False)


def load_entry(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta of a complete entry, or None when it is missing or unreadable.

    The arrays are memory-mapped copy-on-write: a command that uses one split (eval, cam)
    reads only that split's pages from disk, and writing to an array never touches the file."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("cache_version") != CACHE_VERSION:
            return None
        arrays = {
            name: np.load(folder / f"{name}.npy", allow_pickle=False, mmap_mode="c")
            for name in meta["arrays"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged entry is rebuilt, never trusted
    return arrays, meta


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
