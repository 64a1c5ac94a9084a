"""The decision cache: measured rates per (device, torch version, threads, model, batch, input,
mode) in ``<reslearn cache>/precision.json``, so a second run decides at once."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from reslearn.atomic import atomic_write
from reslearn.device import device_name
from reslearn.paths import default_cache_dir
from reslearn.precision.setting import Setting

_CACHE_VERSION = 1


class DecisionCache:
    """Measured rates by key in one JSON file; a damaged or foreign file is ignored and
    rewritten."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> dict[Setting, float]:
        """The rates stored under ``key`` (empty when absent or malformed)."""
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return {}
        rates = {}
        for name, rate in entry.items():
            try:
                setting = Setting.from_key(name)
            except ValueError:
                return {}
            if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
                return {}
            rates[setting] = float(rate)
        return rates

    def put(self, key: str, rates: dict[Setting, float]) -> None:
        """Add (or merge into) ``key``'s rates; an unwritable cache is skipped silently."""
        entries = self._read()
        merged = dict(entries.get(key) or {}) if isinstance(entries.get(key), dict) else {}
        merged.update({s.key: round(r, 2) for s, r in rates.items()})
        entries[key] = merged
        body = json.dumps({"version": _CACHE_VERSION, "entries": entries}, indent=1).encode()
        with contextlib.suppress(OSError):
            atomic_write(self.path, lambda file: file.write(body), durable=False)


def default_cache() -> DecisionCache:
    """``<reslearn cache>/precision.json`` (``$RESLEARN_CACHE`` or ``~/.cache/reslearn``)."""
    return DecisionCache(default_cache_dir() / "precision.json")


def cache_key(device: torch.device, **what: Any) -> str:
    """The cache key: device name, torch version, threads and what is measured."""
    parts = {
        "device": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **what,
    }
    return json.dumps(parts, sort_keys=True, default=str)
