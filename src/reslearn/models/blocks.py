"""Residual and plain building blocks, and the paper's three shortcut options (Sec. 3.3).

A block computes ``relu(F(x) + shortcut(x))``; a plain block (``shortcut=None``) computes
``relu(F(x))`` and has no path from its input to its output other than the convolutions.

Shortcut options, where the block changes shape (channels up and/or resolution down):

- ``"A"``: identity; the input is subsampled by the stride and the extra channels are zeros.
  No parameters.
- ``"B"``: a projection (1x1 conv with the block's stride + BN) only where the shape changes;
  identity elsewhere.
- ``"C"``: a projection on every block.

With ``antialias=True`` (Zhang 2019, "Making convolutional networks shift-invariant again")
every subsampling is preceded by a blur: a strided conv becomes the same conv at stride 1
followed by ``BlurPool2d`` (a fixed [1, 2, 1] x [1, 2, 1] / 16 filter, reflect-padded, then the
stride), option A's ``x[::2, ::2]`` becomes ``BlurPool2d``, and a projection shortcut blurs and
subsamples before its 1x1 conv. The blur has no parameters (its filter is a non-saved buffer).

Parameter names follow torchvision (``conv1``, ``bn1``, ..., ``downsample.0`` / ``.1``), and
so does the in-place ReLU: a forward hook that keeps a BN output past the hook must clone it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reslearn.models.layout import records_gradient, zero_pad_subsample

SHORTCUT_OPTIONS = ("A", "B", "C")
#: Where option A's zero channels go: after the input's (fb.resnet.torch, reslearn's default) or
#: split evenly before and after (akamaster/pytorch_resnet_cifar10's published weights).
ZERO_PADS = ("after", "both")


class BlurPool2d(nn.Module):
    """Blur each channel with a binomial 3x3 filter, then subsample by ``stride``."""

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.channels, self.stride = channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        kernel = self.kernel.to(dtype=x.dtype)
        return F.conv2d(x, kernel, stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, stride={self.stride}"


def subsample(channels: int, stride: int, antialias: bool) -> nn.Module:
    """What follows a stride-1 conv standing in for a strided one: a BlurPool2d (antialias),
    or nothing when the conv keeps its own stride."""
    return BlurPool2d(channels, stride) if antialias and stride > 1 else nn.Identity()


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (BN follows every conv)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution with no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: identity that subsamples by ``stride`` and appends zero channels.

    The zeros go after the input's channels, as in the authors' Torch reproduction
    (fb.resnet.torch), or with ``zero_pad = "both"`` half before and half after them (as the
    most used PyTorch CIFAR ResNets put them). Where they go does not change what a network can
    represent, but weights trained with one layout compute something else with the other.
    """

    zero_pad = "after"
    #: Training runs the one-operator shortcut whose backward keeps the memory format
    #: (``reslearn.models.layout``); False runs autograd's slice and pad (benchmarks compare).
    keep_layout = True

    def __init__(
        self, in_planes: int, out_planes: int, stride: int, antialias: bool = False
    ) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(
                f"option A can only add channels; got {in_planes} -> {out_planes} channels"
            )
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride
        self.blur = BlurPool2d(in_planes, stride) if antialias and stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride
        if self.blur is not None:
            x, stride = self.blur(x), 1
        extra = self.out_planes - self.in_planes
        before = extra // 2 if self.zero_pad == "both" else 0
        if self.keep_layout and records_gradient(x):
            return zero_pad_subsample(x, self.out_planes, before, stride)
        if stride > 1:
            x = x[:, :, ::stride, ::stride]
        if extra:
            x = F.pad(x, (0, 0, 0, 0, before, extra - before))
        return x

    def extra_repr(self) -> str:
        zeros = "" if self.zero_pad == "after" else f", zero_pad={self.zero_pad!r}"
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}{zeros}"


def projection(
    in_planes: int, out_planes: int, stride: int, antialias: bool = False
) -> nn.Sequential:
    """Options B and C: a 1x1 conv with the block's stride, followed by BN (anti-aliased: blur
    and subsample first, then the 1x1 conv at stride 1)."""
    if antialias and stride > 1:
        return nn.Sequential(
            BlurPool2d(in_planes, stride),
            conv1x1(in_planes, out_planes),
            nn.BatchNorm2d(out_planes),
        )
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


def make_shortcut(
    option: str, in_planes: int, out_planes: int, stride: int, antialias: bool = False
) -> nn.Module | None:
    """The shortcut module for ``option``; ``None`` stands for a plain identity."""
    reshapes = stride != 1 or in_planes != out_planes
    if option == "A":
        return ZeroPadShortcut(in_planes, out_planes, stride, antialias) if reshapes else None
    if option == "B":
        return projection(in_planes, out_planes, stride, antialias) if reshapes else None
    if option == "C":
        return projection(in_planes, out_planes, stride, antialias)
    raise ValueError(f"shortcut must be one of {', '.join(SHORTCUT_OPTIONS)}; got {option!r}")


class _Block(nn.Module):
    """What residual and plain blocks share: the shortcut, the addition and the last ReLU."""

    relu: nn.ReLU

    def _attach_shortcut(
        self, shortcut: str | None, in_planes: int, out_planes: int, stride: int, antialias: bool
    ) -> None:
        self.residual = shortcut is not None
        self.downsample = (
            make_shortcut(shortcut, in_planes, out_planes, stride, antialias)
            if self.residual
            else None
        )

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): the residual branch, before the addition and the last ReLU."""
        raise NotImplementedError

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The shortcut's output: ``x``, option A's subsample-and-pad or the projection of
        ``x``; a plain block has none (a ValueError)."""
        if not self.residual:
            raise ValueError("a plain block has no shortcut")
        return x if self.downsample is None else self.downsample(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(F(x) + shortcut(x)) for a residual block, relu(F(x)) for a plain one."""
        branch = self.branch(x)
        if self.residual:
            branch = branch + self.skip(x)
        return self.relu(branch)


class BasicBlock(_Block):
    """Two 3x3 convs (Fig. 5 left); ``shortcut=None`` makes it a plain block."""

    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: str | None = "A",
        stride_in_1x1: bool | None = None,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if stride_in_1x1 is not None:
            raise ValueError(
                "stride_in_1x1 applies only to bottleneck blocks (resnet50/101/152); "
                "this network uses basic blocks, so leave it unset"
            )
        out_planes = planes * self.expansion
        self.conv1 = conv3x3(in_planes, planes, 1 if antialias else stride)
        self.blur = subsample(planes, stride, antialias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, out_planes)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self._attach_shortcut(shortcut, in_planes, out_planes, stride, antialias)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch (zero-initialised on request)."""
        return self.bn2

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.blur(self.conv1(x))))
        return self.bn2(self.conv2(out))


class Bottleneck(_Block):
    """1x1 (reduce), 3x3, 1x1 (expand 4x) convs (Fig. 5 right).

    ``stride_in_1x1=True`` puts the stride on the first 1x1 conv, as in the paper and its
    released Caffe models ("v1", 3.86 GMACs for ResNet-50); ``False`` puts it on the 3x3 conv,
    as torchvision does ("v1.5", 4.09 GMACs).
    """

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: str | None = "B",
        stride_in_1x1: bool | None = None,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        self.stride_in_1x1 = stride_in_1x1 is None or stride_in_1x1  # None: the paper's layout
        stride_1x1, stride_3x3 = (stride, 1) if self.stride_in_1x1 else (1, stride)
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes, 1 if antialias else stride_1x1)
        self.blur1 = subsample(planes, stride_1x1, antialias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, 1 if antialias else stride_3x3)
        self.blur2 = subsample(planes, stride_3x3, antialias)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self._attach_shortcut(shortcut, in_planes, out_planes, stride, antialias)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch (zero-initialised on request)."""
        return self.bn3

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.blur1(self.conv1(x))))
        out = self.relu(self.bn2(self.blur2(self.conv2(out))))
        return self.bn3(self.conv3(out))
