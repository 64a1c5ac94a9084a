"""Layer responses (the paper's Fig. 7): how strongly each 3x3 layer responds on a data set.

A 3x3 layer's *response* is the output of the BN that follows its convolution, before the
ReLU or the residual addition. Its size is summarised as the standard deviation of each channel
over every image and position, averaged over the channels. (BN's offsets differ from channel
to channel; pooling the channels first would mix those offsets into the "spread".) The paper
finds residual networks respond less than plain ones, and deeper ResNets less per layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

_CONV_NAME = re.compile(r"^(?P<prefix>.*?)conv(?P<index>\d+)$")


@dataclass(frozen=True)
class LayerResponse:
    """One 3x3 layer's response statistics; ``index`` counts 3x3 layers from 1, input side."""

    index: int
    name: str  # the conv's module name, e.g. "layer2.3.conv1"
    std: float  # mean over channels of each channel's standard deviation
    mean_abs: float  # mean absolute response, for reference


def response_layers(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """Every 3x3 convolution's BN in forward order, as (conv name, BN module).

    Relies on the torchvision naming our networks use: ``convK`` is followed by ``bnK`` in the
    same module. The CIFAR stem (a 3x3 conv) counts as a layer; an ImageNet 7x7 stem does not.
    """
    modules = dict(model.named_modules())
    layers = []
    for name, module in modules.items():
        match = _CONV_NAME.match(name)
        if not (match and isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3)):
            continue
        bn = modules.get(f"{match['prefix']}bn{match['index']}")
        if isinstance(bn, nn.BatchNorm2d):
            layers.append((name, bn))
    if not layers:
        raise ValueError("the network has no 3x3 convolution followed by a BatchNorm")
    return layers


class _Moments:
    """Per-channel running sums in float64 (exact enough for millions of values)."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.sum_sq: torch.Tensor | None = None
        self.sum_abs: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().to(torch.float64)
        dims = (0, 2, 3)
        parts = (x.sum(dims), (x * x).sum(dims), x.abs().sum(dims))
        if self.sum is None:
            self.sum, self.sum_sq, self.sum_abs = parts
        else:
            self.sum += parts[0]
            self.sum_sq += parts[1]
            self.sum_abs += parts[2]
        self.count += x.shape[0] * x.shape[2] * x.shape[3]

    def std(self) -> float:
        mean = self.sum / self.count
        variance = (self.sum_sq / self.count - mean * mean).clamp_min(0)
        return variance.sqrt().mean().item()

    def mean_abs(self) -> float:
        return (self.sum_abs / self.count).mean().item()


@torch.no_grad()
def layer_responses(model: nn.Module, batches: Iterable[torch.Tensor]) -> list[LayerResponse]:
    """Response statistics of every 3x3 layer of ``model`` (in eval mode) over ``batches``.

    ``batches`` yields normalised inputs on the model's device. The statistics are taken inside
    forward hooks, because the in-place ReLU overwrites a BN's output right after the hook.
    Hooks are removed and the model's train/eval mode restored, also when the forward raises.
    """
    layers = response_layers(model)
    moments = [_Moments() for _ in layers]
    handles = [
        bn.register_forward_hook(lambda _m, _i, out, acc=acc: acc.add(out))
        for (_, bn), acc in zip(layers, moments)
    ]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in batches:
            model(batch)
            seen += len(batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not seen:
        raise ValueError("no images to measure the layer responses on")
    return [
        LayerResponse(index=i + 1, name=name, std=acc.std(), mean_abs=acc.mean_abs())
        for i, ((name, _), acc) in enumerate(zip(layers, moments))
    ]
