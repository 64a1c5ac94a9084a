"""The confusion matrix as a PNG: colours show each true class's share, cells its counts."""

from __future__ import annotations

import os

import numpy as np

from reslearn.atomic import atomic_write
from reslearn.text import plot_text

_MAX_ANNOTATED = 20  # classes up to which every cell shows its count
_MAX_LABELLED = 100  # classes up to which every tick shows its class name


def plot_confusion(
    confusion: np.ndarray, classes: list[str], path: str | os.PathLike, *, title: str = ""
) -> None:
    """Save a (K, K) confusion matrix (rows: true class) as a PNG, coloured row-normalised."""
    # Imported here: matplotlib costs half a second that commands without plots should not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    confusion = np.asarray(confusion)
    k = len(classes)
    if confusion.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {confusion.shape} for {k} classes")
    classes = [plot_text(c) for c in classes]  # file-system names: any bytes, `$`, `\`
    totals = confusion.sum(1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)

    # Cells stay legible from 10 to 100 classes: about 0.5 in each for few, 0.16 in for 100.
    side = float(np.clip(3 + 0.5 * k, 6, 18))
    figure = Figure(figsize=(side + 1.5, side), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8)
    colorbar.set_label("fraction of the true class")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if title:
        axes.set_title(plot_text(title))

    if k <= _MAX_LABELLED:
        cell_points = 72 * side * 0.8 / k  # the matrix takes about 80% of the figure's height
        font = min(10, max(4, int(0.7 * cell_points)))
        axes.set_xticks(range(k), classes, rotation=90, fontsize=font)
        axes.set_yticks(range(k), classes, fontsize=font)
    if k <= _MAX_ANNOTATED:
        font = 10 if k <= 12 else 7
        for row in range(k):
            for col in range(k):
                count = int(confusion[row, col])
                if count:
                    axes.text(
                        col,
                        row,
                        str(count),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color="white" if shares[row, col] > 0.5 else "black",
                    )
    atomic_write(path, lambda f: figure.savefig(f, format="png"), durable=False)
