"""Where a network runs: the choices every command offers, the one place that turns
``--device auto|cpu|cuda`` into a ``torch.device``, and the device's name as results record it.
(In what precision it runs is ``reslearn.precision``'s job.)"""

from __future__ import annotations

import platform

import torch

from reslearn.choices import DEVICES, PRECISIONS
from reslearn.errors import SettingError, UserError

__all__ = [
    "DEVICES", "PRECISIONS", "available_devices", "check_available", "cpu_family", "cpu_name",
    "device_name", "resolve_device",
]  # fmt: skip


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SettingError(f"<device> {name} was asked for but torch sees no CUDA device")
    return torch.device(name)


def available_devices() -> list[str]:
    """The devices torch can run on here: ``cpu``, then each GPU (``cuda:0``, ...), ``mps``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def check_available(device: torch.device | str) -> torch.device:
    """``device`` as a torch.device; a device torch cannot use here (``cuda`` without a GPU,
    ``cuda:3`` with two) is refused in one line that names it and the devices there are."""
    have = available_devices()
    try:
        wanted = torch.device(device)
    except RuntimeError:
        wanted = None
    if wanted is not None and wanted.type not in ("cuda", "mps"):
        return wanted
    for name in have:
        there = torch.device(name)
        if wanted is not None and there.type == wanted.type and wanted.index in (None, there.index):
            return wanted
    raise UserError(f"device '{device}' is not available here (available: {', '.join(have)})")


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


def cpu_family() -> str | None:
    """The CPU's family and model numbers as lscpu shows them (``family 25 model 1``: a Zen 3),
    which tell apart CPUs that share a model name such as ``AMD EPYC``; None where unknown."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() in ("cpu family", "model") and key.strip() not in fields:
                    fields[key.strip()] = value.strip()
                if not line.strip():  # the first processor's block is enough
                    break
    except OSError:
        return None
    if "cpu family" not in fields or "model" not in fields:
        return None
    return f"family {fields['cpu family']} model {fields['model']}"


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA, else the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()
