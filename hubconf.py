"""torch.hub entry points: every reslearn network, and the trained ones shipped with it.

    import torch
    model = torch.hub.load("OWNER/reslearn", "resnet20_cifar10", pretrained=True)
    model.classes          # the class names, in the order of the logits
    model.normalize(x)     # uint8 (N, H, W, C) images -> the normalised (N, C, H, W) input
    model.image_size       # (H, W) the network was trained on
    torch.hub.list("OWNER/reslearn")

``resnet20``, ``plain56``, ``resnet50``, ... build a registry network (``pretrained=False``; its
options as keyword arguments, e.g. ``num_classes=100, shortcut="B"``); ``NAME_DATA`` (e.g.
``resnet56_cifar10``) is a shipped trained network, in eval mode. ``pretrained=True`` on a
registry name takes its CIFAR-10 weights where reslearn ships them (the lowest test error where
several are shipped: ``resnet20_cifar10``, 30 epochs, before ``resnet20_cifar10_laptop``).
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# torch.hub puts the repository on sys.path; the package lives under src/. (Every public
# callable here is an entry point to torch.hub.list, hence the underscores.)
_SRC = str(_Path(__file__).resolve().parent / "src")
if _SRC not in _sys.path:
    _sys.path.insert(0, _SRC)

dependencies = ["torch", "torchvision", "numpy", "safetensors"]


def _shipped(name: str, device: str = "cpu"):
    """A shipped network (``resnet20-cifar10``) in eval mode, with what it takes to feed it."""
    from reslearn.hub import load_pretrained

    trained = load_pretrained(name, device)
    model = trained.model.eval()
    model.classes = list(trained.classes)
    model.image_size = trained.image_size
    model.normalize = trained.prepare
    model.trained = trained  # the TrainedModel: normalizer, metadata, in_channels
    return model


def _built(name: str, pretrained: bool, options: dict):
    """A registry network, untrained, or its shipped CIFAR-10 weights with ``pretrained``."""
    if not pretrained:
        from reslearn.models import create_model

        return create_model(name, **options)
    from reslearn.hub.pretrained import cards

    # the network as the registry builds it (no options), the best of them where several are
    shipped = sorted(
        (card.facts["test_error"], card.name)
        for card in cards().values()
        if card.facts.get("model") == name and not card.facts.get("model_options")
    )
    if not shipped:
        names = ", ".join(n.replace("-", "_") for n in cards()) or "none"
        raise ValueError(f"no shipped weights for {name}; trained networks: {names}")
    if options:
        raise ValueError(f"{shipped[0][1]} is built as it was trained: give no options")
    return _shipped(shipped[0][1])


def _registry_entry(name: str):
    def entry(pretrained: bool = False, **options):
        return _built(name, pretrained, options)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"{name}: the reslearn network, untrained (options as keyword arguments: num_classes, "
        f"in_channels, shortcut, antialias, pool, ...); pretrained=True: its shipped CIFAR-10 "
        "weights, where there are some."
    )
    return entry


def _shipped_entry(card: str):
    def entry(pretrained: bool = True, device: str = "cpu"):
        if not pretrained:
            from reslearn.hub.pretrained import card as card_of
            from reslearn.models import create_model

            facts = card_of(card).facts
            return create_model(facts["model"], num_classes=10, **facts["model_options"])
        return _shipped(card, device)

    entry.__name__ = entry.__qualname__ = card.replace("-", "_")
    entry.__doc__ = (
        f"{card}: reslearn's trained network (model card: reslearn/hub/pretrained/{card}.md), "
        "in eval mode, with .classes, .image_size and .normalize(uint8 NHWC images); "
        "pretrained=False: the same architecture, untrained."
    )
    return entry


def _entries() -> dict:
    from reslearn.choices import MODEL_NAMES
    from reslearn.hub.pretrained import cards

    found = {name: _registry_entry(name) for name in MODEL_NAMES}
    found.update({card.replace("-", "_"): _shipped_entry(card) for card in cards()})
    return found


globals().update(_entries())
