"""Classifying images with a trained network: the most probable classes and their probabilities."""

from __future__ import annotations

import numpy as np

from reslearn.errors import SettingError
from reslearn.evaluate import predict_logits
from reslearn.weights import TrainedModel


def classify(
    trained: TrainedModel, images: np.ndarray, *, topk: int = 5, precision: str = "fp32"
) -> list[list[tuple[str, float]]]:
    """The ``topk`` most probable classes (name, softmax probability) of uint8 (N, H, W, C)."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise SettingError(f"<topk> must be an integer >= 1; got {topk!r}")
    logits = predict_logits(trained.model, trained.prepare(images), precision=precision)
    probabilities, indices = logits.softmax(1).topk(min(topk, len(trained.classes)), dim=1)
    return [
        [(trained.classes[i], p) for i, p in zip(row_i, row_p)]
        for row_i, row_p in zip(indices.tolist(), probabilities.tolist())
    ]
