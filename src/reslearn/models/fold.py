"""Batch norm folded into the convolution before it, for inference.

In eval mode a BN is a per-channel affine map ``s * x + t`` (``s = gamma / sqrt(var + eps)``,
``t = beta - mean * s``), so ``BN(conv(x))`` is one convolution with weights ``s * W`` and bias
``t``: a pass over every activation saved per BN. It also holds through the anti-aliasing blur
that may sit between them (``BN(blur(conv(x)))``): the blur is depthwise, linear, and keeps a
constant channel constant (its taps sum to 1, its padding reflects), so the scale and the bias
pass through it unchanged.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: ``convK`` is followed by ``bnK`` in every block and stem of reslearn's networks.
_MAX_PAIRS = 4


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) child names that follow each other in ``module``'s forward pass."""
    if isinstance(module, nn.Sequential):
        names = [name for name, _ in module.named_children()]
        return list(zip(names, names[1:]))
    return [(f"conv{k}", f"bn{k}") for k in range(1, _MAX_PAIRS + 1)]


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every BN that follows a convolution folded into it
    (the BN becomes ``nn.Identity``); the model itself is untouched. Outputs equal the eval-mode
    model's up to float rounding. For running only: the copy's state dict has other names. A
    model with nothing to fold is returned as it is."""
    if not any(_foldable(m, *names) for m in model.modules() for names in _pairs(m)):
        return model
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        for conv_name, bn_name in _pairs(module):
            if _foldable(module, conv_name, bn_name):
                conv, bn = getattr(module, conv_name), getattr(module, bn_name)
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return folded


def _foldable(module: nn.Module, conv_name: str, bn_name: str) -> bool:
    """Whether ``module.<conv_name>`` is a convolution followed by an eval-ready BN."""
    conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
    return (
        isinstance(conv, nn.Conv2d)
        and type(bn) is nn.BatchNorm2d
        and bn.running_mean is not None
        and bn.running_var is not None
    )
