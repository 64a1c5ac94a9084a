"""A class activation map next to its image: original, map, and the map over the image."""

from __future__ import annotations

import os

import numpy as np

from reslearn.atomic import atomic_write
from reslearn.text import plot_text


def blend(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A heat map (H, W) in [0, 1], jet-coloured, half over a uint8 image (H, W, 1 or 3);
    returns float RGB in [0, 1]."""
    from matplotlib import colormaps

    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    return 0.5 * rgb / 255.0 + 0.5 * colormaps["jet"](heat)[..., :3]


def save_map_figure(
    image: np.ndarray, heat: np.ndarray, path: str | os.PathLike, *, title: str = ""
) -> None:
    """Save original | heat map | overlay side by side. ``image`` is uint8 (H, W, C) with C 1
    or 3; ``heat`` is (H, W) in [0, 1] at the image's resolution."""
    # Imported here: matplotlib costs half a second that commands without plots should not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    figure = Figure(figsize=(7.5, 2.9), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 3)
    panels[0].imshow(rgb, interpolation="nearest")
    panels[1].imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    panels[2].imshow(blend(image, heat), interpolation="nearest")
    for axes, name in zip(panels, ("image", "map", "overlay")):
        axes.set_title(name, fontsize=9)
        axes.axis("off")
    if title:
        figure.suptitle(plot_text(title), fontsize=10)
    atomic_write(path, lambda file: figure.savefig(file, format="png"), durable=False)
