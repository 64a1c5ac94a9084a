"""Evaluating trained weights on a data split, as ``reslearn eval`` does, as library calls:
the whole split held in memory (``evaluate_opened``) or an image folder streamed in the paper's
test views (``evaluate_view``); the precision measured on the network as inference runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from reslearn.choices import GPU_INFERENCE_BATCH, MULTISCALE_SIDES
from reslearn.evaluate.inference import (
    inference_batch,
    inference_model,
    predict_logits,
    view_scores,
)
from reslearn.evaluate.metrics import Evaluation, evaluate_logits
from reslearn.open_trained import Opened
from reslearn.precision import Choice, choose_for_model
from reslearn.weights import TrainedModel


def default_batch(batch_size: int | None, device: torch.device) -> int:
    """``batch_size``, or the fastest batch for this device."""
    return batch_size or inference_batch(GPU_INFERENCE_BATCH, device)


def choose_precision(
    trained: TrainedModel, net: nn.Module | None, *, precision: str | None, batch: int, shape
) -> Choice:
    """``precision`` as given, or (None or "auto") the fastest inference precision measured on
    ``net`` (the network as inference runs it; made here when None) at ``batch`` (cached)."""
    return choose_for_model(
        net if net is not None else inference_model(trained.model),
        device=trained.normalizer.mean.device, precision=precision or "auto",
        channels_last=True, batch_size=batch, input_shape=shape, train=False,
        describe={"model": trained.name, "options": trained.metadata.get("options")},
    )  # fmt: skip


def evaluate_opened(
    opened: Opened,
    *,
    batch_size: int | None = None,
    precision: str | None = None,
    on_choice: Callable[[Choice], None] | None = None,
) -> tuple[Evaluation, Choice]:
    """(the metrics of ``opened``'s network on its labelled images, the precision used): the
    images go to the device in chunks and are normalised there; the network runs folded.
    ``on_choice`` hears the precision choice before the images run (to say it)."""
    trained, images = opened.trained, opened.images
    if images is None or opened.files is not None:
        raise ValueError("evaluation needs labelled data opened with the weights")
    batch = default_batch(batch_size, opened.device)
    net = inference_model(trained.model)  # folded once: measured and run as it is
    shape = (trained.in_channels, *trained.image_size)
    choice = choose_precision(
        trained, net, precision=precision, batch=min(batch, len(images.images)), shape=shape
    )
    if on_choice is not None:
        on_choice(choice)
    logits = [
        predict_logits(net, inputs, batch_size=batch, precision=choice.precision)
        for inputs in opened.batches()  # chunks normalised on the device
    ]
    labels = torch.as_tensor(images.labels, dtype=torch.int64)
    return evaluate_logits(torch.cat(logits), labels, num_classes=len(trained.classes)), choice


def evaluate_view(
    trained: TrainedModel,
    files: Sequence[str],
    labels: np.ndarray,
    view: str,
    *,
    batch: int,
    precision: str,
    workers: int,
    skip_bad: bool = False,
    sides: Sequence[int] = MULTISCALE_SIDES,
    progress: bool = True,
) -> Evaluation:
    """The metrics of one of the paper's test views (center, 10crop, multiscale) over image
    files streamed from disk (softmax averaged over an image's crops or scales)."""
    from reslearn.data.stream_eval import StreamEval

    evaluation = StreamEval(
        files, labels, trained.normalizer, view=view, crop=trained.image_size[0],
        workers=workers, batch_size=batch, skip_bad=skip_bad, sides=sides,
    )  # fmt: skip
    scores, targets = view_scores(
        trained.model, evaluation.batches(trained.normalizer.mean.device, progress=progress),
        precision=precision, channels_last=True,
    )  # fmt: skip
    return evaluate_logits(scores, targets, num_classes=len(trained.classes))
