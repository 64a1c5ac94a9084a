"""Data: loading image datasets, caching them as arrays, and the on-device training data path.

The names below are imported when first used (PEP 562), so that ``reslearn.data.registry``,
which the command line's help reads, comes without numpy or torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reslearn.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and editors see
    from reslearn.data.sources import (
        BadImageError,
        Dataset,
        ImageArrays,
        default_cache_dir,
        load_dataset,
    )

#: Each public name and the module that defines it.
_HOMES = {
    "BadImageError": "reslearn.data.sources",
    "Dataset": "reslearn.data.sources",
    "ImageArrays": "reslearn.data.sources",
    "default_cache_dir": "reslearn.data.sources",
    "load_dataset": "reslearn.data.sources",
}

__all__ = ["BadImageError", "Dataset", "ImageArrays", "default_cache_dir", "load_dataset"]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
