"""Atomic file writes: a crash leaves either the old file or the complete new one.

Every file is written under a temporary name beside its target and renamed over it. A failure
on the way (a read-only or full disk, a folder that cannot be made) is raised as a
``WriteError``: an ``OSError`` with the original ``errno`` whose message names the target the
caller asked for ("cannot write runs/r20/confusion.png: read-only file system"), never the
temporary file. Missing parent folders are created.

A temporary file is named ``.NAME.XXXXXXXX.tmp`` (NAME its target's, then mkstemp's eight
random characters); ``remove_temporaries`` removes what a killed process left under that name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

#: The temporary file of a write into NAME: ``.NAME.`` + mkstemp's 8 characters + ``.tmp``.
_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(_SUFFIX))


class WriteError(OSError):
    """A file could not be written: ``str()`` names the target (``filename``) and the reason
    (``strerror``) in one line; ``errno`` is the original one."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def write_error(path: str | os.PathLike, error: OSError) -> WriteError:
    """``error``, raised while writing ``path``, as a ``WriteError`` that names ``path``."""
    return WriteError(error.errno, _reason(Path(path), error), os.fspath(path))


def _reason(path: Path, error: OSError) -> str:
    """Why ``error`` stopped writing ``path``, in words that name no temporary file."""
    existing = next((folder for folder in path.parents if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if error.errno is not None:
        text = os.strerror(error.errno)
        return text[:1].lower() + text[1:]
    text = " ".join(str(error).split()) or type(error).__name__
    return text.replace(str(error.filename), str(path)) if error.filename else text


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, an ``OSError`` becomes a ``WriteError`` that names ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as error:
        raise write_error(path, error) from error


@contextlib.contextmanager
def temporary_beside(path: str | os.PathLike, *, suffix: str = _SUFFIX) -> Iterator[Path]:
    """An empty temporary file in ``path``'s folder (made, with its parents, when missing),
    removed on the way out unless it was renamed; any ``OSError`` names ``path``."""
    path = Path(path)
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(handle)
    temporary = Path(name)
    try:
        with naming(path):
            yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work is done, a file that could not be written (``WriteError``): a
    temporary file is made and removed in its folder or, when that is missing, in the nearest
    folder above it that exists. Nothing is left behind: the missing folders are made when the
    file is written, so a command refused later for another reason leaves no empty folder."""
    path = Path(path)
    existing = next((folder for folder in path.parents if folder.exists()), Path("."))
    with naming(path):
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_SUFFIX, dir=existing)
        os.close(handle)
        os.unlink(name)


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writes into ``folder`` (and the folders under it) left
    when their process was killed (``.NAME.XXXXXXXX.tmp``, no other file); returns them. Call
    it only where no write can be under way (the folder locked by its one writer)."""
    removed = []
    for path in sorted(Path(folder).rglob(f".*{_SUFFIX}")):
        if _TEMPORARY.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, durable: bool = True
) -> None:
    """Call ``write`` on a temporary file in ``path``'s folder, then rename it over ``path``.

    With ``durable`` the data and the rename are fsynced (checkpoints, weights); a cache that can
    be rebuilt skips that. The file gets the usual permissions (0666 minus the umask), not
    mkstemp's private 0600: results are meant to be shared.
    """
    path = Path(path)
    with temporary_beside(path) as temporary:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    if durable:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable; not every platform can open a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
