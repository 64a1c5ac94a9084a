"""reslearn: deep residual learning for image recognition (He et al., 2016), made runnable."""

from reslearn.models import ResNet, create_model, list_models, model_info, profile_model
from reslearn.version import __version__

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
    """``reslearn.load_pretrained``, imported when first used."""
    if name == "load_pretrained":
        from reslearn.hub import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'reslearn' has no attribute {name!r}")
