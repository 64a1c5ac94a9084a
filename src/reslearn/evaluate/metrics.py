"""Error rates, per-class accuracy and a confusion matrix, from data already on the device.

Everything is computed with tensor operations on the model's device; the only host copies are
the final handful of numbers and the K x K confusion matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reslearn.evaluate.inference import predict_logits


@dataclass
class Evaluation:
    """Error rates, per-class accuracy and the confusion matrix of one pass over a data set."""

    top1_error: float  # fraction in [0, 1]
    top5_error: float  # top-min(5, K)
    per_class_accuracy: list[float]  # NaN for a class without images
    confusion: np.ndarray  # (K, K) int64; rows: true class, columns: predicted class
    count: int
    loss: float  # mean cross-entropy

    @classmethod
    def from_counts(cls, confusion: np.ndarray, wrong5: float, loss_sum: float) -> Evaluation:
        """The metrics of a (K, K) confusion matrix, a count of top-5 misses and a summed
        cross-entropy (also of shards added together); an empty matrix gives zeros."""
        count = int(confusion.sum())
        totals = confusion.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(totals > 0, np.diag(confusion) / totals, np.nan)
        denominator = max(count, 1)
        return cls(
            top1_error=float(count - np.trace(confusion)) / denominator,
            top5_error=float(wrong5) / denominator,
            per_class_accuracy=[float(a) for a in per_class],
            confusion=confusion,
            count=count,
            loss=float(loss_sum) / denominator,
        )

    def as_dict(self, classes: list[str]) -> dict:
        """JSON-ready: per-class accuracy keyed by class name (null for an absent class)."""
        if len(classes) != len(self.per_class_accuracy):
            raise ValueError(
                f"{len(classes)} class names for {len(self.per_class_accuracy)} classes"
            )
        return {
            "count": self.count,
            "top1_error": self.top1_error,
            "top5_error": self.top5_error,
            "loss": self.loss,
            "per_class_accuracy": {
                name: None if math.isnan(acc) else acc
                for name, acc in zip(classes, self.per_class_accuracy)
            },
            "classes": list(classes),
            "confusion": self.confusion.tolist(),
        }


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor, *, num_classes: int) -> Evaluation:
    """The metrics of precomputed logits (N, K) against integer labels (N,)."""
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"expected logits of shape (N, {num_classes}); got {tuple(logits.shape)}")
    labels = labels.to(logits.device, torch.int64)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"{len(logits)} inputs but labels of shape {tuple(labels.shape)}")
    logits = logits.float()
    k = min(5, num_classes)
    # Reading the range of labels and the sums together keeps this to one device sync.
    predicted = logits.argmax(1)
    target = logits.gather(1, labels.clamp(0, num_classes - 1)[:, None])
    # Top-k by rank: a label is within the top k when fewer than k classes score strictly
    # higher. Ties then count in the label's favour, so top-5 correct always includes top-1.
    rank = (logits > target).sum(1)
    stats = torch.stack(
        [
            (rank >= k).sum().double(),
            F.cross_entropy(logits, labels.clamp(0, num_classes - 1), reduction="sum").double(),
            labels.min().double(),
            labels.max().double(),
        ]
    ).tolist()
    wrong5, loss_sum, low, high = stats
    if low < 0 or high >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}); found {int(low)}..{int(high)}")
    confusion = (
        torch.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
        .reshape(num_classes, num_classes)
        .cpu()
        .numpy()
        .astype(np.int64)
    )
    return Evaluation.from_counts(confusion, wrong5, loss_sum)


def evaluate(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    batch_size: int = 500,
    precision: str = "bf16",
    channels_last: bool = True,
) -> Evaluation:
    """Top-1/top-5 error, loss, per-class accuracy and confusion of ``model`` on normalised
    inputs (N, C, H, W) with labels (N,), both on the model's device."""
    if len(labels) != len(inputs):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
    logits = predict_logits(
        model, inputs, batch_size=batch_size, precision=precision, channels_last=channels_last
    )
    return evaluate_logits(logits, labels, num_classes=num_classes)
