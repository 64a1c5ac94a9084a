"""The gradient study's claims and tables, from its measured networks (results.json's
``gradients``), beside De and Smith's and Veit et al.'s published results (``paper.GRADIENTS``)."""

from __future__ import annotations

import math
from typing import Any

from reslearn.experiments import paper
from reslearn.experiments.base import Table
from reslearn.experiments.common import claim
from reslearn.report.tables import network_label

#: "Like 1/sqrt(l)": the fitted exponent of the ratio against the block index lies this close
#: to De and Smith's -1/2.
POWER_TOLERANCE = 0.25
#: "Exponentially": a straight line through log magnitude against k explains this much (r²).
DECAY_R2 = 0.9


def paper_statements() -> dict[str, str]:
    """What De and Smith and Veit et al. found, as the report quotes it."""
    keys = ("branch_ratio", "path_decay", "path_window_text")
    return {key: f"{paper.GRADIENTS[key]}." for key in keys}


def path_study(measured: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The network measured with the path study, or None."""
    return next((m for m in measured if m["paths"]), None)


def scaled_window(blocks: int) -> tuple[float, float]:
    """Veit et al.'s ResNet-110 window of path lengths scaled to a network of ``blocks``."""
    low, high = paper.GRADIENTS["path_window"]
    scale = blocks / paper.GRADIENTS["path_blocks"]
    return low * scale, high * scale


def claims(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """De and Smith's statement on each ResNet, Veit et al.'s two on the path study's."""
    found = []
    for m in measured:
        power = m["ratio_power"]
        if power is None:
            continue
        first, last = m["ratios"]["init"][0], m["ratios"]["init"][-1]
        found.append(claim(
            f"At initialisation {network_label(m)}'s std(F(x)) / std(x) falls like 1/sqrt(l) "
            f"(fitted exponent within {POWER_TOLERANCE:g} of -1/2)",
            abs(power + 0.5) <= POWER_TOLERANCE,
            f"exponent {power:+.2f}; {first['ratio']:.2f} at block 1, {last['ratio']:.2f} at "
            f"block {last['index']} (1/sqrt({last['index']}) = {1 / math.sqrt(last['index']):.2f})",
        ))  # fmt: skip
    m = path_study(measured)
    if m is None:
        return found
    paths, label = m["paths"], network_label(m)
    decay, window, n = paths["decay"], paths["window"], paths["blocks"]
    by_k = paths["by_k"]
    found.append(claim(
        f"{label}: the gradient through a path falls exponentially with its number k of "
        f"branches (a line through log magnitude explains r² ≥ {DECAY_R2:g})",
        decay["per_branch"] is not None and decay["per_branch"] < 1 and decay["r2"] >= DECAY_R2,
        f"x{_number(decay['per_branch'])} per branch, r² {_number(decay['r2'])}; "
        f"{by_k[0]['magnitude']:.3g} at k = 0, {by_k[-1]['magnitude']:.3g} at k = {n}",
    ))  # fmt: skip
    low, high = scaled_window(n)
    found.append(claim(
        f"{label}: the gradient comes from paths shorter than most (its window ends below "
        f"n/2 = {n / 2:g} branches)",
        window["longest"] < n / 2,
        f"{100 * window['share']:g}% of it from paths through {window['shortest']} to "
        f"{window['longest']} of {n} blocks, {100 * window['fraction_of_paths']:.2g}% of the "
        f"2^{n} paths (Veit et al.'s window scaled to {n} blocks: {low:.1f} to {high:.1f})",
    ))  # fmt: skip
    return found


def tables(measured: list[dict[str, Any]]) -> list[Table]:
    """Ours beside the published, the ratios per block, the layer gradients, the path study."""
    if not measured:
        return []
    found = [_beside_paper(measured), _ratios(measured), _norms(measured)]
    m = path_study(measured)
    return found + ([_paths(m)] if m else [])


def _beside_paper(measured: list[dict[str, Any]]) -> Table:
    powers = "; ".join(
        f"{network_label(m)}: exponent {m['ratio_power']:+.2f}"
        for m in measured if m["ratio_power"] is not None
    )  # fmt: skip
    m = path_study(measured)
    decay = window = "-"
    if m is not None:
        paths, label = m["paths"], network_label(m)
        n, w = paths["blocks"], paths["window"]
        low, high = scaled_window(n)
        decay = (f"{label}: x{_number(paths['decay']['per_branch'])} per branch "
                 f"(r² {_number(paths['decay']['r2'])})")  # fmt: skip
        window = (f"{label}: {w['shortest']} to {w['longest']} of {n} blocks, "
                  f"{100 * w['fraction_of_paths']:.2g}% of the 2^{n} paths (the published "
                  f"window scaled to {n} blocks: {low:.1f} to {high:.1f})")  # fmt: skip
    return Table(
        "Beside the published results: De and Smith 2020 (the ratio at initialisation, 1/sqrt(l)"
        " is an exponent of -1/2) and Veit et al. 2016 (ResNet-110)",
        ("what", "published", "ours"),
        [
            ("branch / shortcut at initialisation", paper.GRADIENTS["branch_ratio"], powers or "-"),
            ("gradient of a path of k branches", paper.GRADIENTS["path_decay"], decay),
            ("the path lengths that carry the gradient", paper.GRADIENTS["path_window_text"],
             window),
        ],  # fmt: skip
    )


def _ratios(measured: list[dict[str, Any]]) -> Table:
    resnets = [m for m in measured if m["ratios"]]
    longest = max((len(m["ratios"]["init"]) for m in resnets), default=0)
    rows = []
    for index in range(1, longest + 1):
        cells = [
            f"{m['ratios']['init'][index - 1]['ratio']:.3f} / "
            f"{m['ratios']['trained'][index - 1]['ratio']:.3f}"
            if index <= len(m["ratios"]["init"]) else ""
            for m in resnets
        ]  # fmt: skip
        rows.append((str(index), f"{1 / math.sqrt(index):.3f}", *cells))
    return Table(
        "std(F(x)) / std(shortcut(x)) of each residual block l, at initialisation (train-mode "
        "BN) / trained (eval mode), beside De and Smith's 1/sqrt(l)",
        ("block l", "1/sqrt(l)", *(network_label(m) for m in resnets)),
        rows,
    )


def _norms(measured: list[dict[str, Any]]) -> Table:
    rows = []
    for m in measured:
        cells = []
        for state in ("init", "trained"):
            norms = m["norms"][state]
            cells += [f"{norms[-1]:.3g}", f"{norms[0]:.3g}", _number(norms[0] / norms[-1])]
        rows.append((network_label(m), str(len(m["norms"]["init"])), *cells))
    return Table(
        "Mean norm of d(loss)/d(activation) per image at the last block's output and at the "
        "stem's (the first block's input), and their ratio: how the gradient grows or shrinks "
        "on its way to the input, at initialisation and trained",
        ("network", "layers", "init: last block", "init: stem", "init: stem / last",
         "trained: last block", "trained: stem", "trained: stem / last"),
        rows,
    )  # fmt: skip


def _paths(m: dict[str, Any]) -> Table:
    paths = m["paths"]
    rows = [
        (str(p["k"]), str(p["subsets"]), f"{p['paths']:,}", f"{p['magnitude']:.3g}",
         f"{100 * p['share']:.2f}")
        for p in paths["by_k"]
    ]  # fmt: skip
    return Table(
        f"{network_label(m)}, trained, on {m['images']:,} test images: the mean gradient norm at "
        "the first block's input of one path through k residual branches (the other blocks' "
        f"shortcuts; up to {paths['draws']} sampled sets of k branches), the number of such "
        "paths C(n, k), and their share of the whole gradient, C(n, k) times the magnitude",
        ("k", "sets measured", "paths C(n, k)", "magnitude", "share of gradient (%)"),
        rows,
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
