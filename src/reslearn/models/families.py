"""The paper's two families of networks: the ImageNet ResNets of Table 1 and the CIFAR ResNets
of Sec. 4.2 (6n + 2 layers), residual or plain, built from ``ResNet``."""

from __future__ import annotations

from reslearn.models.blocks import BasicBlock, Bottleneck
from reslearn.models.resnet import Block, ResNet

IMAGENET_STAGES: dict[int, tuple[Block, tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)
#: Down-sampling from the input to the last feature map (ResNet.total_stride once built).
IMAGENET_STRIDE, CIFAR_STRIDE = 32, 4
#: The last feature map's side at the native input size (what pool="flatten" flattens).
IMAGENET_MAP, CIFAR_MAP = 224 // IMAGENET_STRIDE, 32 // CIFAR_STRIDE


def imagenet_resnet(
    depth: int,
    *,
    plain: bool = False,
    shortcut: str | None = None,
    stride_in_1x1: bool | None = None,
    num_classes: int = 1000,
    **options: object,
) -> ResNet:
    """An ImageNet network of Table 1 (depth 18, 34, 50, 101 or 152), residual or plain.

    Defaults are the paper's: shortcut option B, and for bottlenecks the stride on the first
    1x1 conv (``stride_in_1x1=True``; ``False`` gives torchvision's layout).
    """
    if depth not in IMAGENET_STAGES:
        raise ValueError(
            f"ImageNet ResNet depth must be one of {', '.join(map(str, IMAGENET_STAGES))}; "
            f"got {depth!r}"
        )
    block, layers = IMAGENET_STAGES[depth]
    return ResNet(
        block,
        layers,
        widths=IMAGENET_WIDTHS,
        stem="imagenet",
        num_classes=num_classes,
        shortcut=_resolve_shortcut(plain, shortcut, default="B"),
        stride_in_1x1=stride_in_1x1,
        **{"map_size": IMAGENET_MAP, **options},  # type: ignore[arg-type]
    )


def cifar_resnet(
    depth: int,
    *,
    plain: bool = False,
    shortcut: str | None = None,
    num_classes: int = 10,
    **options: object,
) -> ResNet:
    """A CIFAR network of Sec. 4.2 with ``depth = 6n + 2`` layers, residual or plain.

    Three stages of n basic blocks on 32, 16, 8 pixel maps with 16, 32, 64 filters; shortcut
    option A by default.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 26, 32, ..., 56, 110, "
            f"1202); got {depth!r}"
        )
    n = (depth - 2) // 6
    return ResNet(
        BasicBlock,
        (n, n, n),
        widths=CIFAR_WIDTHS,
        stem="cifar",
        num_classes=num_classes,
        shortcut=_resolve_shortcut(plain, shortcut, default="A"),
        **{"map_size": CIFAR_MAP, **options},  # type: ignore[arg-type]
    )


def _resolve_shortcut(plain: bool, shortcut: str | None, default: str) -> str | None:
    if plain:
        if shortcut is not None:
            raise ValueError(
                f"plain networks have no shortcuts, so shortcut={shortcut!r} does not apply; "
                f"use the residual network of the same depth instead"
            )
        return None
    return default if shortcut is None else shortcut
