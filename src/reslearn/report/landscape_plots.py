"""The loss landscape's figures (``reslearn reproduce landscape``): the 1-D curves, the 2-D
contours at Li et al.'s levels, and the 3-D surfaces, one panel per network. A loss that is not
finite (None in results.json) is left blank, and the panel says how many there are."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from reslearn.analysis.landscape_shape import PLOTTED_LOSS, contour_levels
from reslearn.report.tables import network_label

LINES, CONTOURS, SURFACES = "landscape-1d.png", "landscape-contours.png", "landscape-3d.png"


def draw_all(measured: list[dict[str, Any]], root: Path) -> list[tuple[str, str]]:
    """Draw the three figures into ``root``; (file name, caption) pairs."""
    if not measured:
        return []
    plot_lines(measured, root / LINES)
    plot_contours(measured, root / CONTOURS)
    plot_surfaces(measured, root / SURFACES)
    subset = f"{measured[0]['subset']:,} training images"
    return [
        (LINES, f"Training loss (top) and accuracy (bottom) on {subset} along one random "
                "filter-normalised direction (alpha = 0: the trained weights). Dashed: plain "
                "networks; solid: ResNets."),
        (CONTOURS, "Training loss on the plane of two random filter-normalised directions, "
                   "contours at Li et al.'s levels (0.1 to 9.6, every 0.5)."),
        (SURFACES, f"The same surfaces in 3-D, the loss cut off at {PLOTTED_LOSS:g}."),
    ]  # fmt: skip


def _grid(values: list[list[float | None]]) -> np.ndarray:
    return np.array([[math.nan if v is None else v for v in row] for row in values], dtype=float)


def _blank_note(z: np.ndarray) -> str:
    blank = int(np.isnan(z).sum())
    return f"\n{blank} of {z.size} points not finite, left blank" if blank else ""


def _panels(count: int, **subplot: Any) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    columns = min(count, 2)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(4.6 * columns, 4.2 * rows), dpi=110)
    axes = [figure.add_subplot(rows, columns, k + 1, **subplot) for k in range(count)]
    return figure, axes


def plot_lines(measured: list[dict[str, Any]], path: Path) -> None:
    """Each network's 1-D loss and accuracy against the coefficient."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 7.0), dpi=110)
    loss_axes, accuracy_axes = figure.subplots(2, 1, sharex=True)
    for index, m in enumerate(measured):
        x = m["line"]["coefficients"]
        loss = _grid([m["line"]["loss"]])[0]
        accuracy = 100 * _grid([m["line"]["accuracy"]])[0]
        style = "--" if m["family"] == "plain" else "-"
        blank = int(np.isnan(loss).sum())
        label = network_label(m) + (f" ({blank} not finite)" if blank else "")
        loss_axes.plot(x, loss, style, color=f"C{index}", label=label)
        accuracy_axes.plot(x, accuracy, style, color=f"C{index}", label=label)
    loss_axes.set_yscale("log")
    loss_axes.set_ylabel("training loss")
    accuracy_axes.set_ylabel("training accuracy (%)")
    accuracy_axes.set_xlabel("alpha (step along the direction, in filter norms)")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, linewidth=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def plot_contours(measured: list[dict[str, Any]], path: Path) -> None:
    """Each network's 2-D loss as contour lines at the paper's levels."""
    figure, panels = _panels(len(measured))
    for axes, m in zip(panels, measured):
        x = np.asarray(m["plane"]["coefficients"])
        z = _grid(m["plane"]["loss"])
        if np.isfinite(z).sum() >= 4:
            lines = axes.contour(x, x, np.ma.masked_invalid(z), levels=contour_levels(),
                                 linewidths=0.8, cmap="viridis")  # fmt: skip
            axes.clabel(lines, inline=True, fontsize=6)
        axes.plot([0], [0], "k+")
        axes.set_title(network_label(m) + _blank_note(z), fontsize="medium")
        axes.set_xlabel("alpha")
        axes.set_ylabel("beta")
        axes.set_aspect("equal")
    figure.tight_layout()
    figure.savefig(path)


def plot_surfaces(measured: list[dict[str, Any]], path: Path) -> None:
    """Each network's 2-D loss as a 3-D surface, cut off at ``PLOTTED_LOSS``."""
    figure, panels = _panels(len(measured), projection="3d")
    for axes, m in zip(panels, measured):
        x = np.asarray(m["plane"]["coefficients"])
        z = _grid(m["plane"]["loss"])
        alpha, beta = np.meshgrid(x, x)
        axes.plot_surface(alpha, beta, np.minimum(z, PLOTTED_LOSS), cmap="coolwarm",
                          linewidth=0, antialiased=False, vmin=0, vmax=PLOTTED_LOSS)  # fmt: skip
        axes.set_zlim(0, PLOTTED_LOSS)
        axes.set_title(network_label(m) + _blank_note(z), fontsize="medium")
        axes.set_xlabel("alpha")
        axes.set_ylabel("beta")
        axes.set_zlabel("loss")
    figure.tight_layout()
    figure.savefig(path)
