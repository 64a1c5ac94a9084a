"""Where a network runs and in what precision: the choices every command offers, and the one
place that turns ``--device auto|cpu|cuda`` into a ``torch.device``."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("bf16", "fp32")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was asked for but torch sees no CUDA device")
    return torch.device(name)
