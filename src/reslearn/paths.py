"""Where reslearn keeps what it can rebuild: the cache root (decoded arrays, precision
decisions)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$RESLEARN_CACHE``, else ``$XDG_CACHE_HOME/reslearn``, else ``~/.cache/reslearn``."""
    if os.environ.get("RESLEARN_CACHE"):
        return Path(os.environ["RESLEARN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "reslearn"
    return Path.home() / ".cache" / "reslearn"
