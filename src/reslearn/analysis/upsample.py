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

from reslearn.choices import INTERPOLATIONS


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


def interpolation_matrix(size_in: int, size_out: int, mode: str = "bilinear") -> torch.Tensor:
    """The (size_out, size_in) matrix of ``mode``'s up-sampling along one axis, before any
    clipping: all three modes are separable, so ``upsample(m, (H, W), mode)`` equals
    ``Uy @ m @ Ux.T`` (then clipped to the map's range for bicubic) with ``Uy =
    interpolation_matrix(h, H, mode)`` and ``Ux = interpolation_matrix(w, W, mode)``. This is
    how ``reslearn explore`` draws maps in the browser with the same numbers."""
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {mode!r}")
    basis = torch.eye(size_in).reshape(size_in, 1, size_in, 1)
    extra = {} if mode == "nearest" else {"align_corners": False}
    columns = F.interpolate(basis, size=(size_out, 1), mode=mode, **extra)
    return columns.reshape(size_in, size_out).T.contiguous()
