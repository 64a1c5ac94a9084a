"""Class activation maps: CAM (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017).

CAM needs global average pooling followed by one linear layer: the map of class k is
``sum_c w[k, c] * A_c``, the last feature map weighted by that class's classifier row (the
score is then the map's mean plus the bias). Grad-CAM works on any layer: its channel weights
are the spatially averaged gradients of the class score, and the map is ``relu(sum_c
alpha_c A_c)``. At the last stage of a GAP + linear network ``alpha_c = w[k, c] / (h w)``, so
Grad-CAM equals ``relu(CAM) / (h w)``: the same map up to a positive scale, where CAM > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reslearn.models import ResNet


@dataclass
class ClassMaps:
    """Maps (N, K, h, w) for K classes of each of N images, with those classes and their
    softmax probabilities (N, K)."""

    maps: torch.Tensor
    classes: torch.Tensor
    probabilities: torch.Tensor
    layer: str


def _check_cam_model(model: nn.Module) -> None:
    if not (
        isinstance(model, ResNet)
        and isinstance(model.head_pool, nn.AdaptiveAvgPool2d)
        and isinstance(model.fc, nn.Linear)
    ):
        raise ValueError(
            "CAM needs a network that ends in global average pooling and one linear layer; "
            "use Grad-CAM (grad_cam) for this one"
        )


def _targets(logits: torch.Tensor, target: int | torch.Tensor | None, topk: int) -> torch.Tensor:
    """(N, K) class indices: the given class(es), else the top ``topk`` predictions."""
    n, num_classes = logits.shape
    if target is None:
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise ValueError(f"topk must be an integer >= 1; got {topk!r}")
        return logits.topk(min(topk, num_classes), dim=1).indices
    target = torch.as_tensor(target, device=logits.device).reshape(-1)
    if target.numel() == 1:
        target = target.expand(n)
    if target.numel() != n:
        raise ValueError(f"{target.numel()} target classes for {n} images")
    if target.min() < 0 or target.max() >= num_classes:
        raise ValueError(f"target class out of range 0..{num_classes - 1}")
    return target.reshape(n, 1).long()


def grad_cam_layers(model: ResNet) -> list[str]:
    """Layers Grad-CAM can look at: each stage (``layer1`` ...) and each block (``layer1.0``)."""
    names = []
    for stage in model.stage_names:
        names.append(stage)
        names += [f"{stage}.{i}" for i in range(len(getattr(model, stage)))]
    return names


@torch.no_grad()
def class_activation_maps(
    model: ResNet, x: torch.Tensor, *, target: int | torch.Tensor | None = None, topk: int = 1
) -> ClassMaps:
    """CAM of normalised images ``x`` (N, C, H, W) for ``target`` or the top-k classes.

    The maps are raw class evidence at the last feature map's resolution (positive: for the
    class); ``normalize_maps`` and ``upsample`` prepare them for display.
    """
    _check_cam_model(model)
    was_training = model.training
    model.eval()
    try:
        features = model.forward_features(x).float()
        logits = model.forward_head(features)
    finally:
        model.train(was_training)
    return cam_of_features(model, features, logits, target=target, topk=topk)


@torch.no_grad()
def cam_of_features(
    model: ResNet,
    features: torch.Tensor,
    logits: torch.Tensor,
    *,
    target: int | torch.Tensor | None = None,
    topk: int = 1,
) -> ClassMaps:
    """``class_activation_maps`` from a forward pass already made: ``features`` is the last
    feature map (``forward_features``) and ``logits`` the network's output for it."""
    _check_cam_model(model)
    classes = _targets(logits, target, topk)
    weights = model.fc.weight.float()[classes]  # (N, K, C)
    maps = torch.einsum("nkc,nchw->nkhw", weights, features.float())
    probabilities = logits.float().softmax(1).gather(1, classes)
    return ClassMaps(maps, classes, probabilities, model.stage_names[-1])


def grad_cam(
    model: ResNet,
    x: torch.Tensor,
    *,
    layer: str | None = None,
    target: int | torch.Tensor | None = None,
    topk: int = 1,
) -> ClassMaps:
    """Grad-CAM of ``x`` at ``layer`` (a stage or block name; default: the last stage).

    Works for plain and residual networks alike. A stage's output comes from
    ``forward_intermediates``; a block's from a forward hook, removed whatever happens.
    """
    valid = grad_cam_layers(model)
    layer = layer or model.stage_names[-1]
    if layer not in valid:
        raise ValueError(f"unknown layer {layer!r}; layers: {', '.join(valid)}")
    captured: list[torch.Tensor] = []
    handle = None
    if layer not in model.stage_names:  # a block inside a stage
        module = model.get_submodule(layer)
        handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            inputs = x.detach().requires_grad_(False)
            if handle is None:  # intermediate 0 is the stem, 1.. the stages
                index = model.stage_names.index(layer) + 1
                features, captured = model.forward_intermediates(inputs, indices=[index])
                logits = model.forward_head(features)
            else:
                logits = model(inputs)
            activation = captured[0]
            classes = _targets(logits.detach(), target, topk)
            maps = []
            for k in range(classes.shape[1]):
                score = logits.gather(1, classes[:, k : k + 1]).sum()
                (gradient,) = torch.autograd.grad(score, activation, retain_graph=True)
                alpha = gradient.float().mean(dim=(2, 3), keepdim=True)
                maps.append(torch.relu((alpha * activation.float()).sum(1)).detach())
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    probabilities = logits.detach().softmax(1).gather(1, classes)
    return ClassMaps(torch.stack(maps, 1), classes, probabilities, layer)


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Each map (over its last two dims) scaled to [0, 1]; a flat map becomes zeros, not NaN."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def pointing_game(maps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Whether each map's peak lies inside its box: maps (N, H, W), boxes (N, 4) as (top, left,
    bottom, right) in pixels, bottom/right exclusive. Returns a bool tensor (N,)."""
    n, _, width = maps.shape
    peak = maps.reshape(n, -1).argmax(1)
    row, col = peak // width, peak % width
    top, left, bottom, right = boxes.unbind(1)
    return (row >= top) & (row < bottom) & (col >= left) & (col < right)
