"""reslearn: deep residual learning for image recognition (He et al., 2016), made runnable.

``from reslearn import create_model`` works as always; the names below are imported when first
used (PEP 562), so that ``import reslearn.cli`` and ``reslearn --help`` come without torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from reslearn.version import __version__

if TYPE_CHECKING:  # what type checkers and editors see
    from reslearn.hub import load_pretrained
    from reslearn.models import ResNet, create_model, list_models, model_info, profile_model

#: Each lazily imported name and the module that defines it.
_HOMES = {
    "ResNet": "reslearn.models",
    "create_model": "reslearn.models",
    "list_models": "reslearn.models",
    "load_pretrained": "reslearn.hub",
    "model_info": "reslearn.models",
    "profile_model": "reslearn.models",
}

__all__ = [
    "ResNet",
    "__version__",
    "create_model",
    "list_models",
    "load_pretrained",
    "model_info",
    "profile_model",
]


def __getattr__(name: str):
    """``reslearn.NAME`` for the names in ``__all__``, imported on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'reslearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    """The module's own names and the lazily imported ones."""
    return sorted({*globals(), *__all__})
