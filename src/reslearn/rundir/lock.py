"""One process at a time in a folder: an exclusive ``flock`` on ``FOLDER/.reslearn-lock``.

The lock is held for a run's (or an experiment's) whole life and released by the kernel when
the process ends, however it ends (``kill -9`` included), so a crash never leaves a stale lock.
The file holds the holder's pid, host and command, which a refused process names; the file
itself stays in the folder (removing it could let two processes lock two different files).
Under torchrun only rank 0 takes the lock. Where the platform has no ``flock`` (Windows), or
the file system refuses it, the lock is a no-op.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".reslearn-lock"


class FolderInUse(ValueError):
    """Another process holds the folder's lock (the message names its pid)."""


def _describe(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "pid unknown"
    where = holder.get("host")
    text = f"pid {holder['pid']}"
    if where and where != socket.gethostname():
        text += f" on {where}"
    if holder.get("since"):
        text += f", since {holder['since']}"
    return text


def _read_holder(fd: int) -> dict[str, Any]:
    """What the holder wrote into the lock file (it may still be writing it: retry briefly)."""
    for _ in range(20):
        try:
            text = os.pread(fd, 4096, 0).decode(errors="replace")
            holder = json.loads(text)
            if isinstance(holder, dict) and holder.get("pid"):
                return holder
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def _flock_soon(fd: int) -> None:
    """Lock ``fd`` exclusively, trying for half a second (``holder_of`` takes a shared lock for
    an instant to look; a real holder keeps it)."""
    for attempt in range(10):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == 9:
                raise
            time.sleep(0.05)


class FolderLock:
    """An exclusive lock on ``folder`` (created if needed); ``release`` or the process's end
    frees it. ``what`` names the folder's kind in the refusal ("run", "experiment")."""

    def __init__(self, folder: str | os.PathLike, *, what: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        #: Whether the folder did not exist before (a failed run may then remove it again).
        self.created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            return
        while True:
            self.folder.mkdir(parents=True, exist_ok=True)  # a holder may have just removed it
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                _flock_soon(fd)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise FolderInUse(
                    f"{self.folder} is in use by another reslearn process ({_describe(holder)}) "
                    f"training this {what}; wait for it to end or stop it"
                ) from None
            except OSError:  # a file system without locks: go on unlocked
                os.close(fd)
                return
            try:  # the file we locked may have been replaced meanwhile: lock the one there now
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and os.path.samestat(os.fstat(fd), current):
                break
            os.close(fd)
        self._fd = fd
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            "command": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def release(self) -> None:
        """Free the lock (the file stays)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)  # also for forked children sharing the file
            finally:
                os.close(fd)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_of(folder: str | os.PathLike) -> str | None:
    """Who holds ``folder``'s lock ("pid 123, since ..."), or None when nobody does; creates
    nothing."""
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe(_read_holder(fd))
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
