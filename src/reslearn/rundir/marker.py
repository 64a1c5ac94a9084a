"""What makes a folder a reslearn run, and the rules for reusing one.

A run folder gets a marker, ``.reslearn-run`` (JSON: format, run id, creation time), the moment
reslearn takes it, before anything else is written; ``--overwrite`` replaces only a folder with
that marker, or a folder left by a reslearn version that wrote no marker (recognised by a
``config.json`` holding reslearn's own "settings", "resolved" and "environment" records). The
run id is also written into config.json and every checkpoint, so a checkpoint from another run
is recognised as such. The lock file (``reslearn.rundir.lock``) and the marker are housekeeping:
a folder that holds nothing else (a run that stopped before writing its config.json) counts as
empty.
"""

from __future__ import annotations

import errno
import json
import shutil
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reslearn.rundir import CONFIG, write_json
from reslearn.rundir.lock import LOCK_FILE, FolderInUse, holder_of
from reslearn.version import __version__

MARKER = ".reslearn-run"
MARKER_FORMAT = "reslearn-run/1"
_HOUSEKEEPING = (MARKER, LOCK_FILE)
_LEGACY_KEYS = ("settings", "resolved", "environment")


def new_run_id() -> str:
    """A fresh run id (a random UUID's 32 hex digits)."""
    return uuid.uuid4().hex


def write_marker(folder: Path, run_id: str) -> None:
    """Mark ``folder`` as a run reslearn made."""
    write_json(
        folder / MARKER,
        {
            "format": MARKER_FORMAT,
            "run_id": run_id,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reslearn": __version__,
        },
    )


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's marker, or None when it has none (or a damaged one)."""
    try:
        record = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == MARKER_FORMAT else None


def is_legacy_run(folder: Path) -> bool:
    """A run made before markers existed: its config.json has reslearn's own records."""
    try:
        record = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(isinstance(record.get(k), dict) for k in _LEGACY_KEYS)


def made_by_reslearn(folder: Path) -> bool:
    """Whether ``--overwrite`` may replace ``folder``."""
    return read_marker(folder) is not None or is_legacy_run(folder)


def contents(folder: Path) -> list[Path]:
    """The folder's entries but the marker and the lock file (none if it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name not in _HOUSEKEEPING)


def check_run_dir(path: Path, *, overwrite: bool) -> None:
    """Refuse a folder in use by another process, and a non-empty one unless ``overwrite``
    and reslearn made it (resuming is a separate path)."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file; give a folder")
    holder = holder_of(path)
    if holder is not None:
        raise FolderInUse(
            f"{path} is in use by another reslearn process ({holder}); wait for it to end or "
            "stop it"
        )
    if not contents(path):
        return
    if not overwrite:
        raise ValueError(
            f"output folder {path} exists; pass --resume {path} to continue it "
            "or --overwrite to replace it"
        )
    if not made_by_reslearn(path):  # never delete a folder that is not a run
        raise ValueError(
            f"--overwrite replaces only a reslearn run folder, and {path} has neither a "
            f"{MARKER} marker nor a reslearn config.json; choose another --out"
        )


def clear_run_dir(path: Path, *, say: bool = True) -> list[str]:
    """Delete what a previous run left in ``path`` (called with the folder's lock held; the lock
    file stays); prints what it removes. Returns the removed names."""
    entries = contents(path)
    if entries and not made_by_reslearn(path):  # checked again now that the lock is held
        raise ValueError(
            f"--overwrite replaces only a reslearn run folder, and {path} is no longer one; "
            "choose another --out"
        )
    names = [p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in entries]
    if names and say:
        print(f"--overwrite: removing from {path}: {', '.join(names)}", file=sys.stderr)
    for entry in entries + [path / MARKER]:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    return names


def write_failure(error: BaseException, folder: Path) -> str | None:
    """What went wrong when ``error`` is a failed write into ``folder`` ("no space left on
    FOLDER", ...), else None. torch reports a failed checkpoint write as a RuntimeError
    ("unexpected pos ...") whose context holds the OSError."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno is not None:
            if seen.errno == errno.ENOSPC:
                return f"no space left on {folder}"
            if seen.errno == getattr(errno, "EDQUOT", None):
                return f"disk quota exceeded on {folder}"
            return f"could not write to {folder} ({seen.strerror or seen})"
        seen = seen.__cause__ or seen.__context__
    text = str(error)
    if isinstance(error, RuntimeError) and ("unexpected pos" in text or "failed writing" in text):
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB free"
        except OSError:
            free = "free space unknown"
        reason = text.strip().splitlines()[0][:120] if text.strip() else "RuntimeError"
        return f"no space left on {folder}? torch could not finish writing ({reason}; {free})"
    return None
