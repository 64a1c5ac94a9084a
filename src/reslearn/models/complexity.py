"""Model complexity, measured on the built network: parameters counted, multiply-adds counted by
``torch.utils.flop_counter`` (which counts a multiply-add as 2 FLOPs; the paper's "FLOPs" are
multiply-adds, so we halve it). Nothing here is typed in by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from reslearn.models.registry import create_model, model_info

if TYPE_CHECKING:
    from reslearn.models.resnet import ResNet


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _eval_forward(model: nn.Module, input_shape: tuple[int, ...], forward: Callable) -> Any:
    """``forward(x)`` in eval mode without gradients, on one zero input of ``input_shape``."""
    param = next(model.parameters())
    x = torch.zeros((1, *input_shape), device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return forward(x)
    finally:
        model.train(was_training)


def _counted_forward(model: nn.Module, input_shape: tuple[int, ...]) -> FlopCounterMode:
    """One eval-mode forward pass under a FLOP counter."""
    with FlopCounterMode(display=False) as counter:
        _eval_forward(model, input_shape, model)
    return counter


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on a single input of shape ``(C, H, W)``.

    Convolutions and the linear layer count, as in the paper; BN, ReLU, pooling and the
    shortcut additions are not counted.
    """
    return _counted_forward(model, input_shape).get_total_flops() // 2


@dataclass(frozen=True)
class StageProfile:
    """One stage of a network: where its output stands and what it costs."""

    stage: str  # "stem", "layer1", ..., "head"
    blocks: int
    output_shape: tuple[int, ...]  # (C, H, W), or (num_classes,) for the head
    parameters: int
    macs: int

    def as_dict(self) -> dict[str, Any]:
        """The profile as a JSON-ready dict."""
        return asdict(self)


def stage_profiles(model: ResNet, input_shape: tuple[int, ...]) -> list[StageProfile]:
    """Per-stage output shapes, parameters and multiply-adds (the paper's Table 1, measured)."""
    # (name, blocks, the modules that hold its parameters and FLOPs)
    parts: list[tuple[str, int, list[str]]] = [("stem", 0, ["conv1", "bn1"])]
    parts += [(name, len(getattr(model, name)), [name]) for name in model.stage_names]
    parts.append(("head", 0, ["fc"]))
    flops = _counted_forward(model, input_shape).get_flop_counts()

    def outputs(x: torch.Tensor) -> list[torch.Tensor]:
        features, intermediates = model.forward_intermediates(x)
        return [*intermediates, model.forward_head(features)]

    shapes = [tuple(out.shape[1:]) for out in _eval_forward(model, input_shape, outputs)]
    prefix = type(model).__name__
    return [
        StageProfile(
            stage=name,
            blocks=blocks,
            output_shape=shape,
            parameters=sum(count_parameters(getattr(model, m)) for m in members),
            macs=sum(sum(flops.get(f"{prefix}.{m}", {}).values()) for m in members) // 2,
        )
        for (name, blocks, members), shape in zip(parts, shapes)
    ]


@dataclass(frozen=True)
class ModelProfile:
    """One row of the model table, and optionally the model stage by stage."""

    name: str
    family: str
    depth: int
    block: str
    shortcut: str  # "A", "B", "C" or "none" (plain)
    layout: str  # "v1" / "v1.5" for bottlenecks, "-" otherwise
    parameters: int
    macs: int
    input_size: int
    stages: tuple[StageProfile, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The profile as a JSON-ready dict (without ``stages`` when none were measured)."""
        entry = asdict(self)
        if not self.stages:
            del entry["stages"]
        return entry


def profile_model(
    name: str, input_size: int | None = None, *, stages: bool = False, **options: Any
) -> ModelProfile:
    """Measure ``name`` (built with ``options``) at ``input_size`` (default: its native size).

    The model is built on the meta device: no memory, no compute, the whole zoo in a second.
    With ``stages=True`` the profile also holds the stage-by-stage breakdown.
    """
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name, **options)
    size = info.input_size if input_size is None else input_size
    shape = (model.in_channels, size, size)
    return ModelProfile(
        name=name,
        family=info.family,
        depth=info.depth,
        block=info.block,
        shortcut=model.shortcut or "none",
        layout=model.layout,
        parameters=count_parameters(model),
        macs=count_macs(model, shape),
        input_size=size,
        stages=tuple(stage_profiles(model, shape)) if stages else (),
    )
