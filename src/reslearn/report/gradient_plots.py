"""The gradient study's figures (``reslearn reproduce gradients``): the branch-to-shortcut ratio
per block beside 1/sqrt(l), the gradient norm at every layer, and the path study's magnitude
and distribution over path lengths."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from reslearn.report.tables import network_label

RATIOS, NORMS, PATHS = "gradients-ratios.png", "gradients-norms.png", "gradients-paths.png"
_STATES = (("init", "at initialisation (train-mode BN)"), ("trained", "trained (eval mode)"))


def draw_all(measured: list[dict[str, Any]], root: Path) -> list[tuple[str, str]]:
    """Draw the figures into ``root``; (file name, caption) pairs."""
    drawn = []
    if any(m["ratios"] for m in measured):
        plot_ratios(measured, root / RATIOS)
        drawn.append((RATIOS, "std(F(x)) / std(shortcut(x)) of each residual block, at "
                              "initialisation and trained; dashed black: De and Smith's "
                              "1/sqrt(l)."))  # fmt: skip
    if measured:
        plot_norms(measured, root / NORMS)
        drawn.append((NORMS, "Mean norm of the loss's gradient at the stem's output (layer 0) "
                             "and at each block's output. Dashed: plain networks; solid: "
                             "ResNets."))  # fmt: skip
    study = next((m for m in measured if m["paths"]), None)
    if study is not None:
        plot_paths(study, root / PATHS)
        drawn.append((PATHS, f"{network_label(study)}, trained: left, the gradient norm of one "
                             "path through k residual branches (dots: the sampled sets; line: "
                             "their mean); right, each length's share of the paths (C(n, k) / "
                             "2^n) and of the gradient (C(n, k) times the magnitude), the "
                             "window that carries most of it shaded."))  # fmt: skip
    return drawn


def plot_ratios(measured: list[dict[str, Any]], path: Path) -> None:
    """The ratio against the block index, one panel per state."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.8), dpi=110)
    panels = figure.subplots(1, 2, sharey=True)
    resnets = [m for m in measured if m["ratios"]]
    longest = max(len(m["ratios"]["init"]) for m in resnets)
    blocks = range(1, longest + 1)
    for axes, (state, title) in zip(panels, _STATES):
        for index, m in enumerate(resnets):
            ratios = m["ratios"][state]
            axes.plot([r["index"] for r in ratios], [r["ratio"] for r in ratios], "-o",
                      markersize=2.5, color=f"C{index}", label=network_label(m))  # fmt: skip
        axes.plot(blocks, [1 / math.sqrt(b) for b in blocks], "k--", linewidth=1,
                  label="1/sqrt(l)")  # fmt: skip
        axes.set_title(title, fontsize="medium")
        axes.set_xlabel("residual block l")
        axes.grid(True, linewidth=0.3)
    panels[0].set_ylabel("std(F(x)) / std(x)")
    panels[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def plot_norms(measured: list[dict[str, Any]], path: Path) -> None:
    """The gradient norm against the layer, one panel per state (log scale)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.8), dpi=110)
    panels = figure.subplots(1, 2)
    for axes, (state, title) in zip(panels, _STATES):
        for index, m in enumerate(measured):
            norms = m["norms"][state]
            style = "--" if m["family"] == "plain" else "-"
            axes.plot(range(len(norms)), norms, style, color=f"C{index}",
                      label=network_label(m))  # fmt: skip
        axes.set_yscale("log")
        axes.set_title(title, fontsize="medium")
        axes.set_xlabel("layer (0: the stem's output; l: block l's)")
        axes.grid(True, linewidth=0.3)
    panels[0].set_ylabel("gradient norm per image")
    panels[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def plot_paths(m: dict[str, Any], path: Path) -> None:
    """Magnitude against k (log y), and the shares of paths and of gradient against k."""
    from matplotlib.figure import Figure

    paths = m["paths"]
    by_k, n, window = paths["by_k"], paths["blocks"], paths["window"]
    figure = Figure(figsize=(9.0, 3.8), dpi=110)
    magnitude, shares = figure.subplots(1, 2)
    for p in by_k:
        magnitude.plot([p["k"]] * len(p["norms"]), p["norms"], ".", color="C0", markersize=3)
    magnitude.plot([p["k"] for p in by_k], [p["magnitude"] for p in by_k], "-", color="C0")
    magnitude.set_yscale("log")
    magnitude.set_xlabel("residual branches on the path (k)")
    magnitude.set_ylabel("gradient norm of one path")
    k = [p["k"] for p in by_k]
    shares.plot(k, [100 * p["paths"] / 2**n for p in by_k], ":", color="grey",
                label="share of paths")  # fmt: skip
    shares.plot(k, [100 * p["share"] for p in by_k], "-", color="C3", label="share of gradient")
    shares.axvspan(window["shortest"] - 0.5, window["longest"] + 0.5, color="C3", alpha=0.1,
                   label=f"{100 * window['share']:g}% of the gradient")  # fmt: skip
    shares.set_xlabel("path length (k)")
    shares.set_ylabel("%")
    shares.legend(fontsize="small")
    for axes in (magnitude, shares):
        axes.grid(True, linewidth=0.3)
    figure.suptitle(network_label(m), fontsize="medium")
    figure.tight_layout()
    figure.savefig(path)
