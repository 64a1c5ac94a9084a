"""reslearn: deep residual learning for image recognition (He et al., 2016), made runnable.

``from reslearn import create_model`` works as always; the names below are imported when first
used (PEP 562), so that ``import reslearn.cli`` and ``reslearn --help`` come without torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reslearn.lazy import lazy_exports
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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
