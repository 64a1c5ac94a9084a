"""Weights by name or by file, wherever a command takes weights: a reslearn ``.safetensors``
file (or run folder), one of akamaster's ``.th`` files, or a name -- ``reslearn:resnet20-cifar10``
(shipped inside the package) or ``akamaster:resnet20`` (downloaded once into the cache and
checked)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from reslearn.hub.akamaster import fetch, read_akamaster
from reslearn.hub.pretrained import load_pretrained, pretrained_path
from reslearn.weights import TrainedModel, load_weights

__all__ = ["load_pretrained", "load_trained", "weights_path"]


def weights_path(spec: str | os.PathLike) -> Path:
    """The local file a weights spec names (a name is fetched into the cache first)."""
    text = str(spec)
    if text.startswith("akamaster:"):
        return fetch(text.split(":", 1)[1])
    if text.startswith("reslearn:"):
        return pretrained_path(text.split(":", 1)[1])
    return Path(spec)


def load_trained(spec: str | os.PathLike, device: torch.device | str = "cpu") -> TrainedModel:
    """The network a spec names, ready to run: ``akamaster:NAME``, an akamaster ``.th`` file or
    a reslearn ``.safetensors`` file."""
    path = weights_path(spec)
    if path.suffix == ".th":
        return read_akamaster(path, device)
    return load_weights(path, device)
