"""The lesion study's figures (``reslearn reproduce lesion``): the test error with each block
deleted, one panel per network, and the error against the number of blocks deleted at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslearn.report.tables import network_label

BLOCKS, CURVE = "lesion-blocks.png", "lesion-k.png"


def draw_all(measured: list[dict[str, Any]], root: Path) -> list[tuple[str, str]]:
    """Draw both figures into ``root``; (file name, caption) pairs."""
    if not measured:
        return []
    plot_blocks(measured, root / BLOCKS)
    plot_curve(measured, root / CURVE)
    return [
        (BLOCKS, "Test error with one block deleted (stage.position), BN statistics as trained. "
                 "Hatched: downsampling blocks; x: a plain network's downsampling block, which "
                 "cannot be deleted; solid line: the whole network; dotted: chance."),
        (CURVE, "Test error with k random blocks deleted at once: the mean over the draws, the "
                "band from the lowest to the highest. Dashed: plain networks; dotted: chance."),
    ]  # fmt: skip


def plot_blocks(measured: list[dict[str, Any]], path: Path) -> None:
    """One bar chart per network: the error with each block deleted."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, 1.9 * len(measured) + 0.6), dpi=110)
    panels = figure.subplots(len(measured), 1, squeeze=False)[:, 0]
    for axes, m in zip(panels, measured):
        colour = "C1" if m["family"] == "plain" else "C0"
        for x, block in enumerate(m["blocks"]):
            if block["deletable"]:
                axes.bar(x, 100 * block["error"], color=colour, edgecolor="black", linewidth=0.4,
                         hatch="//" if block["downsampling"] else None)  # fmt: skip
            else:
                axes.plot([x], [0], "x", color="grey")
        axes.axhline(100 * m["whole_error"], color="black", linewidth=0.8)
        axes.axhline(100 * m["chance_error"], color="grey", linestyle=":", linewidth=0.8)
        axes.set_xticks(range(len(m["blocks"])), [b["label"] for b in m["blocks"]],
                        fontsize="x-small", rotation=90)  # fmt: skip
        axes.set_ylim(0, 100)
        axes.set_ylabel("error (%)")
        axes.set_title(network_label(m), fontsize="medium", loc="left")
        axes.grid(True, axis="y", linewidth=0.3)
    panels[-1].set_xlabel("block deleted (stage.position)")
    figure.tight_layout()
    figure.savefig(path)


def plot_curve(measured: list[dict[str, Any]], path: Path) -> None:
    """Each network's error against k, the mean line inside its min-max band."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7.0, 4.5), dpi=110)
    axes = figure.subplots()
    for index, m in enumerate(measured):
        points = m["k_curve"]
        if not points:
            continue
        k = [p["k"] for p in points]
        style = "--" if m["family"] == "plain" else "-"
        axes.plot(k, [100 * p["mean"] for p in points], style, marker="o", markersize=3,
                  color=f"C{index}", label=network_label(m))  # fmt: skip
        axes.fill_between(k, [100 * p["min"] for p in points], [100 * p["max"] for p in points],
                          color=f"C{index}", alpha=0.2, linewidth=0)  # fmt: skip
    axes.axhline(100 * measured[0]["chance_error"], color="grey", linestyle=":", linewidth=0.8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # k counts blocks
    axes.set_xlabel("blocks deleted at once (k)")
    axes.set_ylabel("test error (%)")
    axes.set_ylim(0, 100)
    axes.grid(True, linewidth=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
