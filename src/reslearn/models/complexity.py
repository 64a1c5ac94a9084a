"""Model complexity, measured on the built network: parameters counted, multiply-adds counted by
``torch.utils.flop_counter`` (which counts a multiply-add as 2 FLOPs; the paper's "FLOPs" are
multiply-adds, so we halve it). Nothing here is typed in by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reslearn.models.registry import create_model, model_info


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on a single input of shape ``(C, H, W)``.

    Convolutions and the linear layer count, as in the paper; BN, ReLU, pooling and the
    shortcut additions are not counted.
    """
    param = next(model.parameters())
    x = torch.zeros((1, *input_shape), device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


@dataclass(frozen=True)
class ModelProfile:
    """One row of the model table."""

    name: str
    family: str
    depth: int
    block: str
    shortcut: str  # "A", "B", "C" or "none" (plain)
    layout: str  # "v1" / "v1.5" for bottlenecks, "-" otherwise
    parameters: int
    macs: int
    input_size: int

    def as_dict(self) -> dict[str, Any]:
        """The profile as a JSON-ready dict."""
        return asdict(self)


def profile_model(name: str, input_size: Optional[int] = None, **options: Any) -> ModelProfile:
    """Build ``name`` on the meta device (no memory, no compute) and measure it."""
    info = model_info(name)
    size = info.input_size if input_size is None else input_size
    with torch.device("meta"):
        model = create_model(name, **options)
    if info.block == "bottleneck":
        layout = "v1" if options.get("stride_in_1x1", True) else "v1.5"
    else:
        layout = "-"
    return ModelProfile(
        name=name,
        family=info.family,
        depth=info.depth,
        block=info.block,
        shortcut=model.shortcut or "none",
        layout=layout,
        parameters=count_parameters(model),
        macs=count_macs(model, (model.in_channels, size, size)),
        input_size=size,
    )
