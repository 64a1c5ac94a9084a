"""The model zoo: a name -> builder registry with the facts a table of models needs."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass

from reslearn.models.blocks import BasicBlock, Bottleneck
from reslearn.models.families import (
    CIFAR_STRIDE,
    IMAGENET_STAGES,
    IMAGENET_STRIDE,
    cifar_resnet,
    imagenet_resnet,
)
from reslearn.models.resnet import ResNet

#: Keyword options ``create_model`` knows; unknown ones are an error, not ignored. The builders
#: reject, with the reason, ``shortcut`` on a plain network and ``stride_in_1x1`` on basic blocks.
MODEL_OPTIONS = (
    "num_classes", "in_channels", "shortcut", "stride_in_1x1", "zero_init_residual", "antialias",
    "zero_pad", "pool", "map_size",
)  # fmt: skip


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model before building it."""

    name: str
    family: str  # "cifar" or "imagenet"
    depth: int
    block: str  # "basic" or "bottleneck"
    plain: bool
    input_size: int  # native input resolution (32 or 224)
    total_stride: int  # input side / last feature map side (4 or 32)
    builder: Callable[..., ResNet]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> None:
    """Add a model to the zoo; names are unique."""
    if info.name in _REGISTRY:
        raise ValueError(f"model {info.name!r} is already registered")
    _REGISTRY[info.name] = info


# family, builder, native input size, total stride, residual depths, depths with a plain control
_ZOO = (
    ("cifar", cifar_resnet, 32, CIFAR_STRIDE, (20, 32, 44, 56, 110, 1202), (20, 32, 44, 56, 110)),
    ("imagenet", imagenet_resnet, 224, IMAGENET_STRIDE, tuple(IMAGENET_STAGES), (18, 34)),
)


def _register_zoo() -> None:
    for family, builder, input_size, stride, depths, plain_depths in _ZOO:
        for depth in depths:
            block = IMAGENET_STAGES[depth][0] if family == "imagenet" else BasicBlock
            for plain in (False, True) if depth in plain_depths else (False,):
                register_model(
                    ModelInfo(
                        name=f"{'plain' if plain else 'resnet'}{depth}",
                        family=family,
                        depth=depth,
                        block="bottleneck" if block is Bottleneck else "basic",
                        plain=plain,
                        input_size=input_size,
                        total_stride=stride,
                        builder=functools.partial(builder, depth, plain=plain),
                    )
                )


_register_zoo()


def list_models(family: str | None = None) -> list[str]:
    """Names of the registered models, CIFAR family first, optionally of one family only."""
    if family is not None and family not in ("cifar", "imagenet"):
        raise ValueError(f"family must be 'cifar' or 'imagenet'; got {family!r}")
    return [n for n, i in _REGISTRY.items() if family is None or i.family == family]


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; an unknown name raises a ValueError listing the known."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown model {name!r}; {hint}known models: {', '.join(_REGISTRY)}")


def create_model(name: str, **options: object) -> ResNet:
    """Build a registered model, e.g. ``create_model("resnet56", num_classes=100)``.

    Options: ``num_classes``, ``in_channels``, ``shortcut`` ("A", "B", "C"; residual networks
    only), ``stride_in_1x1`` (bottleneck networks only), ``zero_init_residual``, ``antialias``
    (BlurPool before every subsampling), ``zero_pad`` (option A's zero channels "after" the
    input's or on "both" sides), ``pool`` ("avg", "max" or "flatten" before the classifier) and
    ``map_size`` (the last map's side, for ``pool="flatten"``); docs/models.md has the table.
    """
    info = model_info(name)
    unknown = [k for k in options if k not in MODEL_OPTIONS]
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {name}; "
            f"allowed: {', '.join(MODEL_OPTIONS)}"
        )
    model = info.builder(**options)
    model.build_args = {"name": name, "options": dict(options)}
    return model
