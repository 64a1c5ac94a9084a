"""Training curves in the style of the paper's Fig. 6: training error dashed, test error bold,
error (%) against iterations; one panel or several side by side (plain nets | ResNets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reslearn.atomic import atomic_write
from reslearn.text import plot_text

Runs = Sequence[tuple[str, list[dict[str, Any]]]]  # (label, metrics.jsonl records)

#: A series with at most this many points marks each one: a line through a single point is
#: invisible (a short run evaluated once), and a few points read better as measurements.
_FEW_POINTS = 12


def _markers(points: Sequence[Any], size: float) -> dict[str, Any]:
    """Plot keywords that mark each point of a short series; none for a long one."""
    return {"marker": "o", "markersize": size} if len(points) <= _FEW_POINTS else {}


def _draw_runs(axes: Any, runs: Runs, milestones: Sequence[int]) -> float:
    """Draw each run in its own colour; returns the highest error worth showing."""
    top = 0.0
    for index, (label, records) in enumerate(runs):
        colour, label = f"C{index}", plot_text(label)
        train = [(r["step"], 100 * r["train_error"]) for r in records if "train_error" in r]
        for key, style, name in (
            ("test_error", "-", "test"),
            ("val_error", ":", "val"),
        ):
            points = [(r["step"], 100 * r[key]) for r in records if r.get(key) is not None]
            if points:
                axes.plot(
                    *zip(*points), style, color=colour, linewidth=2, label=f"{label} {name}",
                    **_markers(points, 4),
                )  # fmt: skip
                top = max(top, max(p[1] for p in points))
        if train:
            axes.plot(
                *zip(*train), "--", color=colour, linewidth=1, label=f"{label} train",
                **_markers(train, 3),
            )  # fmt: skip
            top = max(top, max(p[1] for p in train[len(train) // 10 :]))
    for milestone in milestones:
        axes.axvline(milestone, color="0.85", linewidth=0.8, zorder=0)
    axes.set_xlabel("iterations")
    axes.set_ylabel("error (%)")
    axes.grid(True, linewidth=0.3)
    axes.legend(fontsize="small")
    return top


def plot_curves(
    runs: Runs,
    path: str | Path,
    *,
    title: str = "",
    milestones: Sequence[int] = (),
) -> None:
    """Plot one or more runs' metrics records (label, records) into a PNG at ``path``."""
    plot_curve_panels([(title, runs)], path, milestones=milestones)


def plot_curve_panels(
    panels: Sequence[tuple[str, Runs]],
    path: str | Path,
    *,
    milestones: Sequence[int] = (),
    share_y: bool = True,
) -> None:
    """Panels side by side, e.g. Fig. 6's plain networks (left) and ResNets (right)."""
    # Imported here: matplotlib costs half a second that commands without plots should not pay.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4 * len(panels), 4.4), dpi=120)
    axes_list = figure.subplots(1, len(panels), squeeze=False, sharey=share_y)[0]
    tops = []
    for axes, (title, runs) in zip(axes_list, panels):
        tops.append(_draw_runs(axes, runs, milestones))
        if title:
            axes.set_title(plot_text(title))
    for axes, top in zip(axes_list, tops):
        axes.set_ylim(0, min(100, max(5.0, (max(tops) if share_y else top) * 1.1)))
    figure.tight_layout()
    kind = Path(path).suffix[1:] or None  # written whole or not at all
    atomic_write(path, lambda file: figure.savefig(file, format=kind), durable=False)
