"""reslearn's own trained networks, shipped inside the package: ``NAME.safetensors`` (fp32) with
``NAME.json``, its model card (data, recipe, the exact command, the test error ``reslearn eval``
measured, training time and machine, sha256). Every command that takes weights takes
``reslearn:NAME``; Python: ``reslearn.load_pretrained(NAME)``."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reslearn.errors import UserError
from reslearn.weights import TrainedModel, load_weights

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Card:
    """A shipped network's model card."""

    name: str
    facts: dict[str, Any]

    @property
    def weights(self) -> Path:
        """The shipped weights file."""
        return FOLDER / f"{self.name}.safetensors"

    @property
    def network(self) -> str:
        """The network with its options as it was trained: ``resnet20 (shortcut=B)``."""
        options = self.facts.get("model_options") or {}
        shown = ", ".join(f"{k}={v}" for k, v in options.items())
        return f"{self.facts['model']} ({shown})" if shown else self.facts["model"]


def cards() -> dict[str, Card]:
    """Every shipped network's card, by name."""
    found = {}
    for path in sorted(FOLDER.glob("*.json")):
        found[path.stem] = Card(path.stem, json.loads(path.read_text()))
    return found


def card(name: str) -> Card:
    """The card of ``name``; an unknown name suggests the closest."""
    known = cards()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean reslearn:{close[0]}?" if close else ""
        listed = ", ".join(f"reslearn:{k}" for k in known) or "none"
        raise UserError(f"unknown pretrained network 'reslearn:{name}'{hint} (shipped: {listed})")
    return known[name]


def pretrained_path(name: str) -> Path:
    """The shipped file of ``name``, checked against the sha256 its card records."""
    entry = card(name)
    digest = hashlib.sha256(entry.weights.read_bytes()).hexdigest()
    if digest != entry.facts.get("sha256"):
        raise UserError(
            f"{entry.weights} does not match its model card's sha256 ({digest[:12]}... vs "
            f"{str(entry.facts.get('sha256'))[:12]}...): reinstall reslearn"
        )
    return entry.weights


def load_pretrained(name: str, device: torch.device | str = "cpu") -> TrainedModel:
    """A shipped network by name (``resnet20-cifar10``), ready to run, in eval mode."""
    return load_weights(pretrained_path(name.removeprefix("reslearn:")), device)
