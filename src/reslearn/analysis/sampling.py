"""Up-sampling in one place: how a coarse map (a CAM, a feature map) is brought to the input's
resolution. The networks' own down-sampling (strided convs, max pooling, option A's
subsampling) is described in ``reslearn.models.blocks``.

- ``nearest``: each map cell becomes a block of identical pixels; shows the true resolution.
- ``bilinear``: linear in x and y between cell centres (``align_corners=False``); smooth, never
  leaves the range of the map.
- ``bicubic``: cubic convolution (a = -0.75, as torch); smoother still, but overshoots, so the
  result is clipped back to the map's range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def upsample(maps: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize maps (..., h, w) to ``size`` (H, W) with one of ``INTERPOLATIONS``."""
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {mode!r}")
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    extra = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(flat, size=size, mode=mode, **extra)
    if mode == "bicubic":
        low = flat.amin(dim=(2, 3), keepdim=True)
        high = flat.amax(dim=(2, 3), keepdim=True)
        out = torch.maximum(torch.minimum(out, high), low)
    return out.reshape(*lead, *size)
