"""The precomputed views packed for the page: PNG data URIs for pictures and feature-map
sheets, base64 bytes for class maps, rounded lists for the numbers. Everything the browser draws
comes from these; the only arithmetic left to it is the map up-sampling, with the matrices of
``reslearn.analysis.upsample.interpolation_matrix``."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from reslearn.analysis.upsample import INTERPOLATIONS, interpolation_matrix
from reslearn.explore.compute import ImageView

FEATURE_LEVELS = 16  # grey levels of the feature maps: 4-bit PNGs, a quarter the size of 8-bit


def png_uri(pixels: np.ndarray, palette: np.ndarray | None = None) -> str:
    """A uint8 image (H, W), (H, W, 1) or (H, W, 3) as a ``data:image/png`` URI; with a
    ``palette`` (L, 3) of L <= 16 colours, ``pixels`` are palette indices in a 4-bit PNG."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    pixels = np.ascontiguousarray(pixels)
    options: dict = {"compress_level": 6}  # optimize=True: 3-4x slower for ~2% smaller
    if palette is None:
        image = Image.fromarray(pixels)
    else:
        image = Image.frombytes("P", (pixels.shape[1], pixels.shape[0]), pixels.tobytes())
        image.putpalette(palette.astype(np.uint8).reshape(-1).tolist())
        options["bits"] = 4
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colormap(name: str, levels: int = 256) -> np.ndarray:
    """matplotlib's colormap ``name`` as ``levels`` uint8 RGB rows (what its lookup gives for
    values ``i / levels``)."""
    from matplotlib import colormaps

    table = colormaps[name].resampled(levels)(np.arange(levels))[:, :3]
    return np.round(table * 255).astype(np.uint8)


def quantize_maps(maps: np.ndarray) -> str:
    """Maps (S, h, w) each scaled to 0..255 over its own range, as base64 bytes. The page
    normalises after up-sampling, which an affine rescaling of the map does not change."""
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.0)
    return base64.b64encode(np.round(scaled * 255).astype(np.uint8).tobytes()).decode("ascii")


def feature_sheet(features: np.ndarray, top: float) -> str:
    """Feature maps (S, C, h, w) as one 4-bit PNG, a row of C maps per shift, scaled so that
    ``top`` is the brightest level (one scale for every shift and mode of a channel)."""
    levels = np.clip(np.round(features / max(top, 1e-12) * (FEATURE_LEVELS - 1)), 0, None)
    levels = levels.clip(max=FEATURE_LEVELS - 1).astype(np.uint8)
    shifts, channels, height, width = levels.shape
    sheet = levels.transpose(0, 2, 1, 3).reshape(shifts * height, channels * width)
    return png_uri(sheet, palette=colormap("viridis", FEATURE_LEVELS))


def interpolation_matrices(map_size, image_size) -> dict[str, dict[str, list]]:
    """For each up-sampling mode, the matrices ``y`` (H, h) and ``x`` (W, w) the page uses."""
    (h, w), (height, width) = map_size, image_size
    return {
        mode: {
            "y": np.round(interpolation_matrix(h, height, mode).numpy(), 6).tolist(),
            "x": np.round(interpolation_matrix(w, width, mode).numpy(), 6).tolist(),
        }
        for mode in INTERPOLATIONS
    }


def _rounded(values: np.ndarray, digits: int = 5) -> list:
    return np.round(values.astype(np.float64), digits).tolist()


def encode_view(view: ImageView) -> dict:
    """One image through one network, packed for the page."""
    tops = {
        name: max(float(m.features[name].max()) for m in view.modes.values())
        for name in view.channels
    }
    return {
        "label": view.label,
        "channels": view.channels,
        "modes": {
            mode: {
                "top": m.top.tolist(),
                "probabilities": _rounded(m.probabilities),
                "maps": quantize_maps(m.maps),
                "features": {name: feature_sheet(f, tops[name]) for name, f in m.features.items()},
                "errors": {name: _rounded(e, 4) for name, e in m.errors.items()},
            }
            for mode, m in view.modes.items()
        },
    }
