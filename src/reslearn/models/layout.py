"""Operators whose backward pass keeps the memory format of their input.

Autograd's own backward of a slice, a channel pad or a global average pool builds its gradient
in NCHW whatever the input's layout. In a channels_last network every operator that then meets
that gradient beside a channels_last tensor takes a strided path: a ReLU backward 17x slower,
a residual add's gradient sum 6x, and the convolutions' backward reorders
(``benchmarks/profile_step.py``; docs/speed.md). These compute the same values in both passes
and hand back a gradient laid out like the input. They are used only when a gradient is
recorded; inference and export run the plain operators.
"""

from __future__ import annotations

import torch
from torch import nn


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last when ``x`` is stored so (and is not also contiguous NCHW), else NCHW."""
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    if channels_last and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def records_gradient(x: torch.Tensor) -> bool:
    """Whether autograd records an operator on ``x`` now (and no tracer is watching)."""
    return x.requires_grad and torch.is_grad_enabled() and not torch.jit.is_tracing()


class _ZeroPadSubsample(torch.autograd.Function):
    """``x[:, :, ::s, ::s]`` placed at channels ``before ...`` of ``out_planes`` zero channels."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, out_planes: int, before: int, stride: int) -> torch.Tensor:
        ctx.shape, ctx.before, ctx.stride = x.shape, before, stride
        ctx.layout = memory_format_of(x)
        sub = x[:, :, ::stride, ::stride] if stride > 1 else x
        out = x.new_zeros((x.shape[0], out_planes, *sub.shape[2:]))
        out = out.contiguous(memory_format=ctx.layout)
        out[:, before : before + x.shape[1]].copy_(sub)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        inner = grad[:, ctx.before : ctx.before + ctx.shape[1]]
        if ctx.stride == 1:
            return inner.contiguous(memory_format=ctx.layout), None, None, None
        full = grad.new_zeros(ctx.shape).contiguous(memory_format=ctx.layout)
        full[:, :, :: ctx.stride, :: ctx.stride].copy_(inner)
        return full, None, None, None


def zero_pad_subsample(x: torch.Tensor, out_planes: int, before: int, stride: int) -> torch.Tensor:
    """Option A's shortcut in one operator: subsample by ``stride``, then put the channels at
    ``before`` among ``out_planes`` (the rest zeros)."""
    return _ZeroPadSubsample.apply(x, out_planes, before, stride)


class _GlobalMean(torch.autograd.Function):
    """The mean of each channel's map, (N, C, 1, 1)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape, ctx.layout = x.shape, memory_format_of(x)
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        spread = grad / (ctx.shape[2] * ctx.shape[3])
        return spread.expand(ctx.shape).contiguous(memory_format=ctx.layout)


class GlobalAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d(1)`` (what it is to every check and to torchvision) whose backward
    keeps the input's memory format."""

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if records_gradient(x):
            return _GlobalMean.apply(x)
        return super().forward(x)
