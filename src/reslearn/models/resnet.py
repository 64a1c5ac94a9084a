"""The ResNet and plain networks of the paper: the ImageNet family (Table 1) and the CIFAR
family (Sec. 4.2), built by one class that differs only in its stem, widths and stage depths.

Every network exposes ``forward_features(x)`` (the last feature map, before global pooling),
``forward_head(features)`` (global average pooling + the linear classifier) and timm's
``forward_intermediates(x, indices=...)`` (the stem's and each stage's output), so that class
activation maps, shift probes, feature extraction and fine-tuning need no knowledge of the
internals.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslearn.models.blocks import (
    SHORTCUT_OPTIONS,
    ZERO_PADS,
    BasicBlock,
    BlurPool2d,
    Bottleneck,
    ZeroPadShortcut,
    subsample,
)
from reslearn.models.layout import GlobalAvgPool2d

Block = type[BasicBlock | Bottleneck]
#: What follows the last feature map: global average pooling (the paper's), global max pooling,
#: or no pooling (the map flattened into the classifier: needs the native input size).
POOLS = ("avg", "max", "flatten")


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def _take_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's index selection over ``count`` intermediates: None: all; an int n: the last n;
    a sequence: those (negative ones counted from the end), in ascending order."""
    if indices is None:
        return list(range(count))
    if isinstance(indices, int) and not isinstance(indices, bool):
        if not 1 <= indices <= count:
            raise ValueError(f"indices: take the last 1 to {count} intermediates; got {indices}")
        return list(range(count - indices, count))
    chosen = []
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int) or not -count <= index < count:
            raise ValueError(
                f"indices must lie in {-count}..{count - 1} (stem, then each stage); got {index!r}"
            )
        chosen.append(index % count)
    return sorted(set(chosen))


def normalize_shortcut(shortcut: object) -> str:
    """Return the shortcut option as "A", "B" or "C" (case-insensitive), or raise ValueError."""
    if isinstance(shortcut, str) and shortcut.upper() in SHORTCUT_OPTIONS:
        return shortcut.upper()
    raise ValueError(
        f"shortcut must be one of {', '.join(repr(s) for s in SHORTCUT_OPTIONS)} "
        f"(A: zero-padded identity, B: projections where shapes change, C: projections "
        f"everywhere); got {shortcut!r}"
    )


class ResNet(nn.Module):
    """A residual (or, with ``shortcut=None``, plain) convolutional network.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: number of blocks in each stage.
        widths: base width of each stage (the bottleneck's output is 4x that).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max pool) or ``"cifar"`` (one 3x3 conv).
        num_classes: outputs of the final linear layer.
        in_channels: channels of the input image (3 for RGB, 1 for grey-scale).
        shortcut: ``"A"``, ``"B"``, ``"C"``, or ``None`` for a plain network.
        stride_in_1x1: bottleneck only; where a downsampling block puts its stride (``None``:
            on the first 1x1 conv, as in the paper).
        zero_init_residual: start each residual branch's last BN at zero, so that every
            residual block is the identity at initialisation.
        antialias: blur before every subsampling (BlurPool, Zhang 2019): strided convs run
            at stride 1 followed by a blur-and-subsample, the ImageNet max pool at stride 1
            followed by one, and the shortcuts blur before they subsample. Adds no parameters.
        zero_pad: option A only: ``"after"`` puts the zero channels after the input's
            (fb.resnet.torch), ``"both"`` splits them before and after (akamaster's weights).
        pool: ``"avg"`` (global average pooling, the paper's), ``"max"`` or ``"flatten"`` (the
            last map flattened into the classifier, ``map_size`` pixels a side).
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        *,
        widths: Sequence[int],
        stem: str,
        num_classes: int,
        in_channels: int = 3,
        shortcut: str | None = "B",
        stride_in_1x1: bool | None = None,
        zero_init_residual: bool = False,
        antialias: bool = False,
        zero_pad: str = "after",
        pool: str = "avg",
        map_size: int | None = None,
    ) -> None:
        super().__init__()
        for name, value, allowed in (("zero_pad", zero_pad, ZERO_PADS), ("pool", pool, POOLS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        _check_positive_int("num_classes", num_classes)
        _check_positive_int("in_channels", in_channels)
        _check_bool("zero_init_residual", zero_init_residual)
        _check_bool("antialias", antialias)
        if stride_in_1x1 is not None:
            _check_bool("stride_in_1x1", stride_in_1x1)
        if shortcut is not None:
            shortcut = normalize_shortcut(shortcut)
        if len(layers) != len(widths) or any(n < 1 for n in layers):
            raise ValueError(f"need one block count >= 1 per stage width; got {layers}, {widths}")
        if zero_init_residual and shortcut is None:
            raise ValueError("zero_init_residual needs residual blocks; a plain network has none")
        self.antialias = antialias
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.shortcut = shortcut
        self._stride_in_1x1 = stride_in_1x1
        stem_stride = self._make_stem(stem, in_channels, widths[0])
        self.relu = nn.ReLU(inplace=True)

        self.stage_names: list[str] = []
        for i, (depth, width) in enumerate(zip(layers, widths)):
            name = f"layer{i + 1}"
            self.add_module(name, self._make_layer(block, width, depth, stride=1 if i == 0 else 2))
            self.stage_names.append(name)
        #: Downsampling factor from the input to the last feature map.
        self.total_stride = stem_stride * 2 ** (len(layers) - 1)
        #: Channels of the last feature map (the classifier's input).
        self.num_features = self.inplanes
        self.pool, self.map_size = pool, map_size if pool == "flatten" else None
        self.head_pool, head_in = _head_pool(pool, self.inplanes, map_size)  # avg, max or none
        self.fc = nn.Linear(head_in, num_classes)
        self.zero_pad = zero_pad
        for module in self.modules():
            if isinstance(module, ZeroPadShortcut):
                module.zero_pad = zero_pad
        self._init_weights(zero_init_residual)

    def _make_stem(self, stem: str, in_channels: int, cifar_width: int) -> int:
        """Build ``conv1``, ``blur``, ``bn1`` and ``maxpool``; set ``self.inplanes`` to the
        stem's output channels and return the stem's stride."""
        antialias = self.antialias
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(
                in_channels, 64, kernel_size=7, stride=1 if antialias else 2, padding=3, bias=False
            )
            self.blur = subsample(64, 2, antialias)
            self.bn1 = nn.BatchNorm2d(64)
            self.maxpool: nn.Module = (
                nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1), BlurPool2d(64, 2))
                if antialias
                else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            )
            self.inplanes = 64
            return 4
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, cifar_width, kernel_size=3, padding=1, bias=False)
            self.blur = nn.Identity()
            self.bn1 = nn.BatchNorm2d(cifar_width)
            self.maxpool = nn.Identity()
            self.inplanes = cifar_width
            return 1
        raise ValueError(f"stem must be 'imagenet' or 'cifar'; got {stem!r}")

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        """One stage (torchvision's convention): ``blocks`` blocks of base width ``planes``, the
        first taking ``self.inplanes`` channels at ``stride``; advances ``self.inplanes``."""
        options = {"shortcut": self.shortcut, "stride_in_1x1": self._stride_in_1x1}
        options["antialias"] = self.antialias
        layers = []
        for j in range(blocks):
            layers.append(block(self.inplanes, planes, stride if j == 0 else 1, **options))
            self.inplanes = planes * block.expansion
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. 2015 ("MSRA") normal init with std sqrt(2 / (k*k*out_channels)), the variant
        # used by the authors' Torch reproduction and by torchvision.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.fc.bias)
        if zero_init_residual:
            for block in self.blocks():
                nn.init.zeros_(block.last_bn.weight)

    def blocks(self) -> list[BasicBlock | Bottleneck]:
        """Every block, stage by stage, in the order the input goes through them."""
        return [block for name in self.stage_names for block in getattr(self, name)]

    @property
    def layout(self) -> str:
        """Bottleneck layout: v1 (stride on the 1x1 conv), v1.5 (on the 3x3); "-" if basic."""
        first = self.blocks()[0]
        if isinstance(first, Bottleneck):
            return "v1" if first.stride_in_1x1 else "v1.5"
        return "-"

    @property
    def avgpool(self) -> nn.Module:
        """torchvision's name for ``head_pool``, for code written against torchvision."""
        return self.head_pool

    @property
    def is_plain(self) -> bool:
        """True when the network has no shortcuts at all (the paper's plain control)."""
        return self.shortcut is None

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shape if ``x`` cannot go through the network."""
        expected = f"(N, {self.in_channels}, H, W) with H, W >= {self.total_stride}"
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            built = f" (the network was built for in_channels={self.in_channels})"
            raise ValueError(
                f"expected an input of shape {expected}; got {tuple(x.shape)}"
                + (built if x.dim() == 4 else "")
            )
        if x.shape[2] < self.total_stride or x.shape[3] < self.total_stride:
            raise ValueError(
                f"input {tuple(x.shape[2:])} is too small: this network downsamples by "
                f"{self.total_stride}, so it expects {expected}"
            )
        side = None if self.map_size is None else self.map_size * self.total_stride
        if side is not None and tuple(x.shape[2:]) != (side, side):
            raise ValueError(
                f"pool='flatten' fixes the input at {side}x{side} pixels (the classifier takes "
                f"the flattened last map); got {tuple(x.shape[2:])}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"expected a floating-point input; got {x.dtype} (convert images with "
                f"x.float() / 255 and normalise them first)"
            )

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The first conv, BN, ReLU (and, for ImageNet networks, the max pool)."""
        return self.maxpool(self.relu(self.bn1(self.blur(self.conv1(x)))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, shape (N, num_features, H / total_stride, W / total_stride)."""
        self.check_input(x)
        x = self.forward_stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The stem's and the stages' outputs on the way to the last feature map (timm's
        ``forward_intermediates``).

        The intermediates are numbered 0 (the stem, as ``forward_stem`` returns it: after the
        max pool of ImageNet networks, where timm takes it before) to ``len(stage_names)``
        (the last stage, whose output is the last feature map).

        Args:
            x: the input (N, C, H, W).
            indices: which intermediates: all (None), the last n (an int n), or those listed
                (negative indices count from the end).
            norm: accepted for timm's signature; these networks have no final norm layer
                (every BN sits inside a block), so it changes nothing.
            stop_early: stop after the last intermediate asked for; the returned features
                are then that intermediate rather than the last feature map.
            output_fmt: only ``"NCHW"``.
            intermediates_only: return only the list of intermediates.

        Returns:
            ``(features, intermediates)``, where ``features`` equals ``forward_features(x)``
            (unless ``stop_early`` stopped before the last stage), or just ``intermediates``.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW'; got {output_fmt!r}")
        _check_bool("norm", norm)
        take = _take_indices(len(self.stage_names) + 1, indices)
        self.check_input(x)
        x = self.forward_stem(x)
        intermediates = [x] if 0 in take else []
        last = max(take) if stop_early and take else len(self.stage_names)
        for i, name in enumerate(self.stage_names[:last], start=1):
            x = getattr(self, name)(x)
            if i in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling (or the ``pool`` chosen), then (unless ``pre_logits``) the
        linear classifier."""
        pooled = torch.flatten(self.head_pool(features), 1)
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        """The final linear layer."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a fresh one with ``num_classes`` outputs."""
        _check_positive_int("num_classes", num_classes)
        device, dtype = self.fc.weight.device, self.fc.weight.dtype
        self.fc = nn.Linear(self.fc.in_features, num_classes, device=device, dtype=dtype)
        nn.init.zeros_(self.fc.bias)
        self.num_classes = num_classes


def _head_pool(pool: str, channels: int, map_size: int | None) -> tuple[nn.Module, int]:
    """The pooling before the classifier, and the classifier's input width."""
    if pool == "avg":
        return GlobalAvgPool2d(), channels
    if pool == "max":
        return nn.AdaptiveMaxPool2d(1), channels
    _check_positive_int("map_size", map_size)
    return nn.Identity(), channels * map_size * map_size
