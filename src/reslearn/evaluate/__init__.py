"""Evaluation and inference: the metrics of a pass over a data set (``metrics``), the fastest
way to run a trained network on images (``inference``), and the whole of ``reslearn eval`` as
library calls (``pipeline``)."""

from reslearn.evaluate.inference import (
    inference_batch,
    inference_model,
    predict_logits,
    view_scores,
)
from reslearn.evaluate.metrics import Evaluation, evaluate, evaluate_logits
from reslearn.evaluate.pipeline import (
    choose_precision,
    default_batch,
    evaluate_opened,
    evaluate_view,
)

__all__ = [
    "Evaluation",
    "choose_precision",
    "default_batch",
    "evaluate",
    "evaluate_logits",
    "evaluate_opened",
    "evaluate_view",
    "inference_batch",
    "inference_model",
    "predict_logits",
    "view_scores",
]
