"""A setting (a concrete precision and a memory layout) and how it applies itself: the network's
memory format, the dtype and layout the inputs take, the autocast around the step; the choice
among candidates, and the rule that picks it: the fastest, fp32 within 3% of it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reslearn.choices import PREFERRED_PRECISIONS

#: Rates within this fraction of the fastest count as a tie, which fp32 wins.
TIE = 0.03
_PREFERENCE = {name: rank for rank, name in enumerate(PREFERRED_PRECISIONS)}
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a concrete precision (None for fp32)."""
    return _DTYPES.get(precision)


def input_dtype(precision: str) -> torch.dtype:
    """The dtype normalised inputs are stored in for a concrete precision."""
    return _DTYPES.get(precision, torch.float32)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a concrete precision (a null context for fp32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def allow_tf32(device: torch.device) -> None:
    """fp32 on a CUDA GPU uses TF32 tensor cores for matmuls and convolutions where they exist."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@dataclass(frozen=True)
class Setting:
    """One candidate: a concrete precision (bf16, fp16, fp32) and a memory layout."""

    precision: str
    channels_last: bool

    @property
    def key(self) -> str:
        """``fp32/nhwc``: how the cache and config.json name it."""
        return f"{self.precision}/{'nhwc' if self.channels_last else 'nchw'}"

    @property
    def label(self) -> str:
        """``fp32 + channels_last``: how the user is told."""
        return f"{self.precision} + {'channels_last' if self.channels_last else 'NCHW'}"

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype the normalised inputs are stored in."""
        return input_dtype(self.precision)

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory layout of the network's weights and of its inputs."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def apply(self, model: nn.Module) -> nn.Module:
        """Put ``model``'s weights in this layout (in place; returned for chaining)."""
        return model.to(memory_format=self.memory_format)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` in the dtype and layout the step consumes (no copy when they already
        are: the data path converts once, where it is made)."""
        return images.to(self.input_dtype).contiguous(memory_format=self.memory_format)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The autocast the forward pass runs under (a null context for fp32)."""
        return autocast(device, self.precision)

    @classmethod
    def from_key(cls, key: str) -> Setting:
        """The inverse of ``key``."""
        precision, _, layout = key.partition("/")
        if precision not in _PREFERENCE or layout not in ("nhwc", "nchw"):
            raise ValueError(f"not a precision setting: {key!r}")
        return cls(precision, layout == "nhwc")


#: What the data path emits unless told: fp32 in channels_last memory.
FP32_CHANNELS_LAST = Setting("fp32", True)


@dataclass
class Choice:
    """What was chosen, how (measured, cached or forced), and the candidates' rates."""

    setting: Setting
    source: str  # "measured" | "cached" | "forced"
    rates: dict[str, float] = field(default_factory=dict)  # Setting.key -> images/s
    seconds: float = 0.0  # time spent measuring
    notes: list[str] = field(default_factory=list)  # fallbacks from an unsupported request

    @property
    def precision(self) -> str:
        """The chosen concrete precision."""
        return self.setting.precision

    @property
    def channels_last(self) -> bool:
        """Whether the chosen layout is channels_last."""
        return self.setting.channels_last

    def describe(self) -> str:
        """One line for the user, e.g. ``precision: fp32 + channels_last (650 img/s; ...)``."""
        if not self.rates:
            return f"precision: {self.setting.label} ({self.source})"
        chosen = self.rates.get(self.setting.key)
        others = "; ".join(
            f"{Setting.from_key(k).label} {v:.0f}"
            for k, v in sorted(self.rates.items(), key=lambda kv: -kv[1])
            if k != self.setting.key
        )
        how = f"measured {self.seconds:.1f} s" if self.source == "measured" else "cached"
        rate = f"{chosen:.0f} img/s" if chosen is not None else "?"
        return f"precision: {self.setting.label} ({rate}; {others}; {how})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: config.json's record of the decision."""
        return {
            "precision": self.precision,
            "channels_last": self.channels_last,
            "source": self.source,
            "images_per_s": {k: round(v, 1) for k, v in self.rates.items()},
            "seconds": round(self.seconds, 2),
            "notes": list(self.notes),
        }


def pick(rates: dict[Setting, float]) -> Setting:
    """The fastest setting; within ``TIE`` of the fastest, fp32 first, then bf16, then fp16,
    then the faster."""
    if not rates:
        raise ValueError("no candidate was measured")
    best = max(rates.values())
    tied = [s for s, r in rates.items() if r >= best * (1 - TIE)]
    return min(tied, key=lambda s: (_PREFERENCE[s.precision], -rates[s]))
