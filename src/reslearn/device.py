"""Where a network runs: the choices every command offers, the one place that turns
``--device auto|cpu|cuda`` into a ``torch.device``, and the device's name as results record it.
(In what precision it runs is ``reslearn.precision``'s job.)"""

from __future__ import annotations

import platform

import torch

from reslearn.choices import DEVICES, PRECISIONS
from reslearn.errors import SettingError

__all__ = ["DEVICES", "PRECISIONS", "cpu_name", "device_name", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SettingError(f"<device> {name} was asked for but torch sees no CUDA device")
    return torch.device(name)


def cpu_name() -> str:
    """The CPU's model name (``AMD EPYC 9R14``), as /proc/cpuinfo gives it where it can."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA, else the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()
