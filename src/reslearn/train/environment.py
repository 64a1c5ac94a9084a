"""What a run records about where it ran: versions, the source revision (and whether the tree
had uncommitted changes), the device, threads and command line."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import reslearn
from reslearn.device import cpu_family, device_name
from reslearn.version import __version__


def _git(*args: str) -> str | None:
    """A git command's output in reslearn's source folder (None outside a checkout)."""
    source = Path(reslearn.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_revision() -> tuple[str | None, bool | None]:
    """(the commit reslearn runs from, whether its tracked files differ from it); (None, None)
    when reslearn is not running from a git checkout."""
    revision = (_git("rev-parse", "HEAD") or "").strip() or None
    if revision is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return revision, None if status is None else bool(status.strip())


def environment(device: torch.device, processes: int = 1) -> dict[str, Any]:
    """config.json's "environment" record."""
    revision, dirty = git_revision()
    return {
        "reslearn": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_revision": revision,
        "git_dirty": dirty,
        "device": str(device),
        "device_name": device_name(device),
        "cpu_family": cpu_family(),
        "threads": torch.get_num_threads(),
        "command": sys.argv,
        "processes": processes,
    }
