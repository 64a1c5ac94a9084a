"""reslearn: deep residual learning for image recognition (He et al., 2016), made runnable."""

from importlib.metadata import PackageNotFoundError, version

from reslearn.models import ResNet, create_model, list_models, model_info, profile_model

try:
    __version__ = version("reslearn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["ResNet", "__version__", "create_model", "list_models", "model_info", "profile_model"]
