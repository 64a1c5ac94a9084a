"""Which numeric precision and memory layout a network runs fastest in on this device, measured.

``--precision auto`` (the default) times a few steps of the actual network, batch and image size
under each candidate -- bf16 autocast, fp16 autocast with a GradScaler (CUDA GPUs without bf16),
fp32 (TF32 matmuls on CUDA), each in channels_last and NCHW -- and keeps the fastest, preferring
fp32 when it is within 3% (it is the exact one). This is the CPU counterpart of
``cudnn.benchmark``: bf16 is 2-5x faster than fp32 on an AMD EPYC (Zen 4) and 2x slower on an
Intel Xeon without AMX, so no fixed default suits every machine. Decisions are cached per
(device, torch version, threads, model, batch, input shape, mode) in
``<cache>/precision.json``, so a second run decides at once.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reslearn.atomic import atomic_write
from reslearn.device import PRECISIONS, device_name
from reslearn.paths import default_cache_dir

__all__ = ["PRECISIONS", "Choice", "Setting", "choose", "choose_for_model", "pick"]

#: Rates within this fraction of the fastest count as a tie, which fp32 wins.
TIE = 0.03
_PREFERENCE = {"fp32": 0, "bf16": 1, "fp16": 2}
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CACHE_VERSION = 1


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

    @classmethod
    def from_key(cls, key: str) -> Setting:
        """The inverse of ``key``."""
        precision, _, layout = key.partition("/")
        if precision not in _PREFERENCE or layout not in ("nhwc", "nchw"):
            raise ValueError(f"not a precision setting: {key!r}")
        return cls(precision, layout == "nhwc")


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


# -- what this device supports -------------------------------------------------------------------


def _autocast_works(device: torch.device, precision: str) -> bool:
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


def _cpu_fp16_fast() -> bool:
    """Whether oneDNN reports native fp16 on this CPU (AMX-FP16 / AVX512-FP16)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


def auto_precisions(device: torch.device) -> list[str]:
    """The precisions ``auto`` measures on this device: fp32 and bf16 everywhere bf16 runs
    natively or could win; fp16 on CUDA GPUs without bf16 and on CPUs with native fp16."""
    if device.type == "cuda":
        return ["fp32", "bf16"] if _cuda_bf16(device) else ["fp32", "fp16"]
    out = ["fp32"]
    if _autocast_works(device, "bf16"):
        out.append("bf16")
    if _cpu_fp16_fast() and _autocast_works(device, "fp16"):
        out.append("fp16")
    return out


def usable_precision(device: torch.device, precision: str) -> tuple[str, str | None]:
    """A forced precision, or the fallback when this device cannot run it, with the reason."""
    if precision == "fp32":
        return precision, None
    if device.type == "cuda" and precision == "bf16" and not _cuda_bf16(device):
        name = torch.cuda.get_device_name(device)
        return "fp16", f"bf16 is not supported on {name}; using fp16 with a GradScaler"
    if not _autocast_works(device, precision):
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
    layouts = [True, False] if channels_last is None else [channels_last]
    return [Setting(p, cl) for p in precisions for cl in layouts], notes


# -- the decision cache ---------------------------------------------------------------------------


class DecisionCache:
    """Measured rates by key in one JSON file; a damaged or foreign file is ignored and
    rewritten."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> dict[Setting, float]:
        """The rates stored under ``key`` (empty when absent or malformed)."""
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return {}
        rates = {}
        for name, rate in entry.items():
            try:
                setting = Setting.from_key(name)
            except ValueError:
                return {}
            if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
                return {}
            rates[setting] = float(rate)
        return rates

    def put(self, key: str, rates: dict[Setting, float]) -> None:
        """Add (or merge into) ``key``'s rates; an unwritable cache is skipped silently."""
        entries = self._read()
        merged = dict(entries.get(key) or {}) if isinstance(entries.get(key), dict) else {}
        merged.update({s.key: round(r, 2) for s, r in rates.items()})
        entries[key] = merged
        body = json.dumps({"version": _CACHE_VERSION, "entries": entries}, indent=1).encode()
        with contextlib.suppress(OSError):
            atomic_write(self.path, lambda file: file.write(body), durable=False)


def default_cache() -> DecisionCache:
    """``<reslearn cache>/precision.json`` (``$RESLEARN_CACHE`` or ``~/.cache/reslearn``)."""
    return DecisionCache(default_cache_dir() / "precision.json")


def cache_key(device: torch.device, **what: Any) -> str:
    """The cache key: device name, torch version, threads and what is measured."""
    parts = {
        "device": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        **what,
    }
    return json.dumps(parts, sort_keys=True, default=str)


# -- choosing -------------------------------------------------------------------------------------


def choose(
    settings: list[Setting],
    measure: Callable[[Setting], float],
    *,
    key: str | None = None,
    cache: DecisionCache | None = None,
    budget_s: float = 3.0,
    rounds: tuple[int, int] = (3, 10),
    notes: list[str] | None = None,
) -> Choice:
    """Pick among ``settings``: alone -> forced; all in the cache -> cached; else measured.

    ``measure(setting)`` runs one timed call and returns images/s. Every candidate gets one
    untimed warm-up call, then rounds of one call each, interleaved so that a noisy neighbour
    slows them all alike: at least ``rounds[0]`` (at least one when a round alone exceeds
    ``budget_s``), at most ``rounds[1]``, stopping once ``budget_s`` is spent. A candidate's rate
    is its best call.
    """
    notes = list(notes or [])
    if len(settings) == 1:
        return Choice(settings[0], "forced", notes=notes)
    if cache is not None and key is not None:
        stored = cache.get(key)
        if all(s in stored for s in settings):
            rates = {s: stored[s] for s in settings}
            return Choice(pick(rates), "cached", {s.key: r for s, r in rates.items()}, notes=notes)
    started = time.perf_counter()
    for setting in settings:
        measure(setting)  # warm-up: allocator, oneDNN primitives, cuDNN algorithms
    rates: dict[Setting, float] = {}
    least, most = rounds
    for done in range(1, most + 1):
        for setting in settings:
            rate = measure(setting)
            rates[setting] = max(rates.get(setting, 0.0), rate)
        spent = time.perf_counter() - started
        if spent > budget_s and (done >= least or spent * (done + 1) / done > 2 * budget_s):
            break
    seconds = time.perf_counter() - started
    if cache is not None and key is not None:
        cache.put(key, rates)
    return Choice(pick(rates), "measured", {s.key: r for s, r in rates.items()}, seconds, notes)


def step_timer(
    model: nn.Module,
    *,
    batch_size: int,
    input_shape: tuple[int, int, int],
    device: torch.device,
    train: bool = True,
) -> Callable[[Setting], float]:
    """``measure`` for ``choose``: one forward and backward pass (``train``) or one inference
    pass of a copy of ``model`` on synthetic inputs, returning images/s.

    The copies and the inputs come from their own generator: the model, its optimizer and the
    global RNG are untouched, so a run measured before training is the run it would have been.
    """
    generator = torch.Generator(device=device).manual_seed(0)
    classes = int(getattr(model, "num_classes", 10))
    copies: dict[bool, nn.Module] = {}
    inputs: dict[Setting, torch.Tensor] = {}
    labels = torch.randint(0, classes, (batch_size,), device=device, generator=generator)
    base = torch.randn(batch_size, *input_shape, device=device, generator=generator)

    def measure(setting: Setting) -> float:
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        if setting.channels_last not in copies:
            copies[setting.channels_last] = copy.deepcopy(model).to(device, memory_format=layout)
        net = copies[setting.channels_last]
        if setting not in inputs:
            x = base.to(input_dtype(setting.precision))
            inputs[setting] = x.contiguous(memory_format=layout)
        x = inputs[setting]
        _synchronize(device)
        start = time.perf_counter()
        if train:
            net.train()
            net.zero_grad(set_to_none=True)
            with autocast(device, setting.precision):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), labels)
            if setting.precision == "fp16":
                loss = loss * 1024.0  # as a GradScaler would
            loss.backward()
        else:
            net.eval()
            with torch.inference_mode(), autocast(device, setting.precision):
                net(x)
        _synchronize(device)
        return batch_size / (time.perf_counter() - start)

    return measure


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def choose_for_model(
    model: nn.Module,
    *,
    device: torch.device,
    precision: str,
    channels_last: bool | None,
    batch_size: int,
    input_shape: tuple[int, int, int],
    train: bool = True,
    describe: dict[str, Any] | None = None,
    cache: DecisionCache | None = None,
) -> Choice:
    """Everything ``--precision auto`` does for one network: the candidates this device can run,
    the cache, and the measurement; ``describe`` (the model's name and options) goes into the
    cache key."""
    settings, notes = candidates(device, precision, channels_last)
    key = cache_key(
        device,
        model=describe or type(model).__name__,
        batch=batch_size,
        input=list(input_shape),
        mode="train" if train else "inference",
    )
    measure = step_timer(
        model, batch_size=batch_size, input_shape=input_shape, device=device, train=train
    )
    return choose(
        settings, measure, key=key, cache=cache if cache is not None else default_cache(),
        notes=notes,
    )  # fmt: skip
