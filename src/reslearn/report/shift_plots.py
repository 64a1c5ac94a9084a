"""The shift probes' figures: one network's accuracy against shift, rotation and scale, and
equivariance error per stage; several networks' accuracy against shift side by side."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from reslearn.text import plot_text

_BORDER_TITLES = {"circular": "circular shifts", "zero": "shifts filling the border"}


def plot_shift_report(results: dict[str, Any], path: str | os.PathLike, *, title: str = "") -> None:
    """Three panels from ``reslearn shift``'s JSON: invariance, other transforms, equivariance."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4.2), dpi=110)
    by_shift, others, equi = figure.subplots(1, 3)
    invariance = results["invariance"]
    for mode, curve in invariance["accuracy_by_shift"].items():
        consistency = invariance["consistency"][mode]
        by_shift.plot(range(len(curve)), [100 * a for a in curve], "-o", markersize=3,
                      label=f"{mode} shift (consistency {100 * consistency:.1f}%)")  # fmt: skip
    by_shift.set_xlabel("shift (pixels, each of 4 directions)")
    by_shift.set_ylabel("accuracy (%)")
    by_shift.set_title("invariance to shifts")
    for key, unit in (("rotation", lambda v: v / 10), ("scale", lambda v: (v - 1) * 10)):
        probe = invariance[key]
        xs = [unit(v) for v in probe["values"]]
        accuracy = [100 * a for a in probe["accuracy"]]
        agreement = [100 * a for a in probe["agreement"]]
        others.plot(xs, accuracy, "-o", markersize=3, label=f"{key}: accuracy")
        others.plot(xs, agreement, "--", label=f"{key}: same class as unchanged")
    others.set_xlabel("rotation / 10 degrees, or (scale - 1) x 10")
    others.set_ylabel("%")
    others.set_title("rotations and scale changes")
    for name, entry in results["equivariance"].items():
        equi.plot(entry["shifts"], entry["error"], "-o", markersize=3,
                  label=f"{name} (stride {entry['stride']})")  # fmt: skip
    equi.set_xlabel("input shift (pixels, diagonal, circular)")
    equi.set_ylabel("||F(Tx) - T'F(x)|| / ||F(x)||")
    equi.set_title("equivariance error per stage")
    for axes in (by_shift, others, equi):
        axes.grid(True, linewidth=0.3)
        axes.legend(fontsize="small")
    if title:
        figure.suptitle(plot_text(title))
    figure.tight_layout()
    figure.savefig(path)


def plot_accuracy_by_shift(
    probes: list[dict[str, Any]],
    path: str | os.PathLike,
    *,
    dashed: Callable[[dict[str, Any]], bool] = lambda probe: False,
) -> None:
    """Several networks' accuracy against shift size (an experiment's shift probes, each with
    ``name``, ``accuracy_by_shift`` and ``consistency``): circular shifts left, mean-filled
    borders right; ``dashed`` picks the probes drawn dashed (a baseline, say)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.0), dpi=120)
    panels = figure.subplots(1, 2, sharey=True)
    for axes, mode in zip(panels, ("circular", "zero")):
        for index, probe in enumerate(probes):
            curve = [100 * a for a in probe["accuracy_by_shift"][mode]]
            axes.plot(range(len(curve)), curve, "--o" if dashed(probe) else "-o", markersize=3,
                      color=f"C{index}", label=f"{probe['name']} (consistency "
                      f"{100 * probe['consistency'][mode]:.1f}%)")  # fmt: skip
        axes.set_title(_BORDER_TITLES[mode])
        axes.set_xlabel("shift (pixels, each of 4 directions)")
        axes.grid(True, linewidth=0.3)
        axes.legend(fontsize="small")
    panels[0].set_ylabel("test accuracy (%)")
    figure.tight_layout()
    figure.savefig(path)
