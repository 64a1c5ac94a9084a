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

from reslearn.device import PRECISIONS
from reslearn.precision.decision_cache import DecisionCache, cache_key, default_cache
from reslearn.precision.measure import choose, choose_for_model, step_timer
from reslearn.precision.setting import (
    TIE,
    Choice,
    Setting,
    allow_tf32,
    autocast,
    autocast_dtype,
    input_dtype,
    pick,
)
from reslearn.precision.support import auto_precisions, autocast_works, candidates

__all__ = [
    "PRECISIONS",
    "TIE",
    "Choice",
    "DecisionCache",
    "Setting",
    "allow_tf32",
    "auto_precisions",
    "autocast",
    "autocast_dtype",
    "autocast_works",
    "cache_key",
    "candidates",
    "choose",
    "choose_for_model",
    "default_cache",
    "input_dtype",
    "pick",
    "step_timer",
]
