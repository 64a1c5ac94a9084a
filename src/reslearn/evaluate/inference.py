"""Inference as eval, predict and the analyses run it: the network with batch norm folded,
in batches sized for the device, under the chosen precision; the paper's multi-view scores."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from reslearn.choices import CONCRETE_PRECISIONS, CPU_INFERENCE_BATCH
from reslearn.models import ResNet
from reslearn.models.fold import fold_batch_norm
from reslearn.precision import autocast


def inference_batch(batch_size: int, device: torch.device) -> int:
    """The batch to run inference in on ``device`` when ``batch_size`` is the most wanted at
    once (results do not depend on it: every image is computed on its own)."""
    return min(batch_size, CPU_INFERENCE_BATCH) if device.type == "cpu" else batch_size


def inference_model(model: nn.Module, *, channels_last: bool = True) -> nn.Module:
    """The network as inference runs it: an eval-mode copy with every batch norm folded into
    the convolution before it (``reslearn.models.fold``), in channels_last memory when asked.
    Any other module (a compiled network, a wrapper) runs as it is: the folding follows the
    ``convK`` -> ``bnK`` order of reslearn's own blocks."""
    folded = fold_batch_norm(model) if isinstance(model, ResNet) else model
    if channels_last:
        folded.to(memory_format=torch.channels_last)
    return folded


def predict_logits(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    batch_size: int = 500,
    precision: str = "bf16",
    channels_last: bool = True,
) -> torch.Tensor:
    """Float32 logits (N, K) of normalised inputs (N, C, H, W) on the model's device.

    Runs ``inference_model(model)`` (eval mode, BN folded; ``model`` itself is left as it is)
    under ``torch.inference_mode``, with bf16 or fp16 autocast or in fp32 (``precision``;
    ``reslearn.precision.choose_for_model`` measures which is fastest), in batches of
    ``batch_size`` (``inference_batch`` says which is fastest on a device); with
    ``channels_last`` each batch is fed in that memory format. In fp32 the logits equal the
    eval-mode model's up to float rounding.
    """
    if precision not in CONCRETE_PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(CONCRETE_PRECISIONS)}; got {precision!r}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be an integer >= 1; got {batch_size!r}")
    if inputs.dim() != 4 or len(inputs) == 0:
        raise ValueError(f"expected a non-empty (N, C, H, W) input; got {tuple(inputs.shape)}")
    param = next(model.parameters(), None)
    if param is not None and param.device != inputs.device:
        raise ValueError(f"inputs are on {inputs.device} but the model is on {param.device}")
    memory = torch.channels_last if channels_last else torch.contiguous_format
    net = inference_model(model, channels_last=channels_last)
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode(), autocast(inputs.device, precision):
            logits = torch.cat(
                [
                    net(batch.contiguous(memory_format=memory)).float()
                    for batch in inputs.split(batch_size)
                ]
            )
    finally:
        net.train(was_training)
    return logits


def view_scores(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor | Sequence[torch.Tensor], torch.Tensor]],
    *,
    precision: str = "bf16",
    channels_last: bool = True,
    batch_size: int = 500,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log of the view-averaged softmax scores (n, K), labels (n,)) over ``batches`` of
    normalised test views on the model's device, such as ``StreamEval.batches`` yields.

    A batch's views are either one tensor (B, V, C, H, W), V views of the same size for each
    of B images, run in one pass; or a sequence of (B, C, h, w) tensors, one per size (the
    multi-scale test), each its own pass. Each image's score is the mean of its views' softmax;
    the log turns it back into something that ranks, top-k and cross-entropy treat exactly
    like logits (``evaluate_logits``).
    """
    options = dict(batch_size=batch_size, precision=precision, channels_last=channels_last)
    model = inference_model(model, channels_last=channels_last)  # folded once, not per batch
    out_scores, out_labels = [], []
    for views, labels in batches:
        if isinstance(views, torch.Tensor):
            count, per_image = views.shape[:2]
            logits = predict_logits(model, views.flatten(0, 1), **options)
            probs = logits.softmax(1).reshape(count, per_image, logits.shape[1]).mean(1)
        else:
            probs = torch.stack(
                [predict_logits(model, v, **options).softmax(1) for v in views]
            ).mean(0)
        out_scores.append(probs.clamp_min(1e-12).log())
        out_labels.append(torch.as_tensor(labels))
    if not out_scores:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        return torch.empty(0, 0, device=device), torch.empty(0, dtype=torch.int64)
    return torch.cat(out_scores), torch.cat(out_labels)
