"""What this device can run: the precisions ``auto`` measures here, and a forced precision's
fallback (with the reason) when the device cannot run it."""

from __future__ import annotations

import torch
from torch import nn

from reslearn.precision.setting import Setting, autocast


def autocast_works(device: torch.device, precision: str) -> bool:
    """Whether a convolution trains under this autocast on this device (tiny trial)."""
    try:
        conv = nn.Conv2d(3, 4, 3).to(device)
        x = torch.ones(1, 3, 6, 6, device=device)
        with autocast(device, precision):
            y = conv(x)
        y.float().sum().backward()
        return bool(torch.isfinite(conv.weight.grad).all())
    except (RuntimeError, NotImplementedError, TypeError):
        return False


def _cuda_bf16(device: torch.device) -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch has no including_emulation
        return torch.cuda.get_device_capability(device)[0] >= 8


def _cpu_bf16_fast() -> bool:
    """Whether oneDNN runs bf16 with vector instructions on this CPU (AVX-512 and up); without
    them bf16 is emulated, 8-12x slower than fp32 on an AMD EPYC Zen 3, and measuring it would
    cost a minute at start-up for a candidate that cannot win."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True  # cannot tell: measure it, as before


#: Said when a run is forced to fp16 on a CPU: measured at about 5 img/s for ResNet-20 on an
#: Intel Xeon with AMX (family 6 model 167), where fp32 trains at 650 and bf16 at 1,480.
CPU_FP16_SLOW = (
    "fp16 on a CPU trains at a few images per second (about 5 img/s for resnet20 on a Xeon with "
    "AMX, against 650 in fp32); --precision auto or fp32 is much faster here"
)


def auto_precisions(device: torch.device) -> list[str]:
    """The precisions ``auto`` measures on this device: fp32 everywhere; bf16 where it runs
    natively or could win (CUDA GPUs with bf16, CPUs whose oneDNN runs bf16 in vector
    instructions); fp16 only on CUDA GPUs without bf16. Never fp16 on a CPU: it trains there
    at a few images per second even with AMX-FP16, and measuring it cost 125 s per network.
    A forced ``--precision bf16`` or ``fp16`` runs wherever its autocast works."""
    if device.type == "cuda":
        return ["fp32", "bf16"] if _cuda_bf16(device) else ["fp32", "fp16"]
    out = ["fp32"]
    if _cpu_bf16_fast() and autocast_works(device, "bf16"):
        out.append("bf16")
    return out


def usable_precision(device: torch.device, precision: str) -> tuple[str, str | None]:
    """A forced precision, or the fallback when this device cannot run it, with the reason."""
    if precision == "fp32":
        return precision, None
    if device.type == "cuda" and precision == "bf16" and not _cuda_bf16(device):
        name = torch.cuda.get_device_name(device)
        return "fp16", f"bf16 is not supported on {name}; using fp16 with a GradScaler"
    if not autocast_works(device, precision):
        where = "this CPU build of torch" if device.type == "cpu" else str(device)
        note = f"{precision} autocast does not work on {where} (torch {torch.__version__})"
        return "fp32", f"{note}; using fp32"
    return precision, None


def candidates(
    device: torch.device, precision: str, channels_last: bool | None
) -> tuple[list[Setting], list[str]]:
    """The settings to measure for ``--precision`` and ``--channels-last`` as given (``auto`` and
    None mean "measure"), with a note for each forced choice this device cannot run."""
    notes: list[str] = []
    if precision == "auto":
        precisions = auto_precisions(device)
    else:
        usable, note = usable_precision(device, precision)
        precisions = [usable]
        if note:
            notes.append(note)
        elif usable == "fp16" and device.type == "cpu":
            notes.append(CPU_FP16_SLOW)
    layouts = [True, False] if channels_last is None else [channels_last]
    return [Setting(p, cl) for p in precisions for cl in layouts], notes
