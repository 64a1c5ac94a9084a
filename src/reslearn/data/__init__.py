"""Data: loading image datasets, caching them as arrays, and the on-device training data path."""

from reslearn.data.sources import (
    BadImageError,
    Dataset,
    ImageArrays,
    default_cache_dir,
    load_dataset,
)

__all__ = ["BadImageError", "Dataset", "ImageArrays", "default_cache_dir", "load_dataset"]
