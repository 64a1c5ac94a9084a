"""reslearn: deep residual learning for image recognition (He et al., 2016), made runnable."""

from reslearn.models import ResNet, create_model, list_models, model_info, profile_model
from reslearn.version import __version__

__all__ = ["ResNet", "__version__", "create_model", "list_models", "model_info", "profile_model"]
