"""The landscape experiment's tables and claims, from its measured networks (results.json's
``landscapes``), beside Li et al.'s Fig. 5 (``paper.LANDSCAPE_FIG5``)."""

from __future__ import annotations

from typing import Any

from reslearn.analysis.landscape_shape import BASIN_RISE
from reslearn.experiments import paper
from reslearn.experiments.base import Table
from reslearn.experiments.common import claim, percent
from reslearn.report.tables import network_label


def tables(measured: list[dict[str, Any]]) -> list[Table]:
    """Ours beside the paper's, then the 1-D and 2-D shape numbers of each network."""
    return [_beside_paper(measured), _line_table(measured), _plane_table(measured)]


def _beside_paper(measured: list[dict[str, Any]]) -> Table:
    ours = {m["model"]: m for m in measured}
    names = list(paper.LANDSCAPE_FIG5) + [n for n in ours if n not in paper.LANDSCAPE_FIG5]
    rows = []
    for name in names:
        published_error, published_shape = paper.LANDSCAPE_FIG5.get(name, (None, "-"))
        m = ours.get(name)
        shape = m["plane_shape"] if m else {}
        rows.append((
            network_label(m) if m else name,
            "-" if published_error is None else f"{published_error:.2f}",
            published_shape,
            percent(m["test_error"]) if m else "-",
            _share(shape.get("basin_fraction")),
            _share(shape.get("downward_fraction")),
        ))  # fmt: skip
    return Table(
        "Beside Li et al. 2018, Fig. 5 (their test errors after 300 epochs; plain = their "
        "'noshort'): our test error, the share of the 2-D grid in the basin around the trained "
        f"weights (connected, loss below the centre's + {BASIN_RISE:g}) and the share of points "
        "below loss 10 where the surface curves downwards",
        ("network", "paper: test error (%)", "paper: landscape", "ours: test error (%)",
         "ours: basin (% of grid)", "ours: curving down (%)"),
        rows,
    )  # fmt: skip


def _line_table(measured: list[dict[str, Any]]) -> Table:
    rows = []
    for m in measured:
        s = m["line_shape"]
        width = _number(s["basin_width"])
        if s["basin_reaches_edge"] and s["basin_width"] is not None:
            width = f"≥ {width}"
        rows.append((
            network_label(m), _number(s["centre_loss"], 4),
            " / ".join(_number(x) for x in s["edge_losses"]), width,
            _number(s["centre_curvature"]), str(s["non_finite"]),
        ))  # fmt: skip
    return Table(
        f"1-D: {len(measured[0]['line']['coefficients']) if measured else 0} points on [-1, 1] "
        f"along the first direction, on {measured[0]['subset'] if measured else 0:,} training "
        f"images: the basin's width where the loss stays below the centre's + {BASIN_RISE:g}, "
        "the second difference of the loss at the centre",
        ("network", "loss at 0", "loss at -1 / +1", "basin width", "d²loss/dα² at 0",
         "not finite"),
        rows,
    )  # fmt: skip


def _plane_table(measured: list[dict[str, Any]]) -> Table:
    rows = []
    for m in measured:
        s = m["plane_shape"]
        rows.append((
            network_label(m), _number(s["centre_loss"], 4), _number(s["edge_mean_loss"]),
            _share(s["basin_fraction"]),
            " / ".join(_number(x) for x in s["centre_curvature"]),
            _share(s["downward_fraction"]), f"{s['non_finite']} of {s['points']}",
        ))  # fmt: skip
    side = len(measured[0]["plane"]["coefficients"]) if measured else 0
    return Table(
        f"2-D: a {side} x {side} grid on [-1, 1]², the loss at the centre and its mean on the "
        "grid's border, the basin's share of the grid, the second differences at the centre "
        "along each direction, the share of points curving downwards along either",
        ("network", "loss at 0", "border mean", "basin (% of grid)", "d²loss at 0 (α / β)",
         "curving down (%)", "not finite"),
        rows,
    )  # fmt: skip


def claims(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Li et al.'s statements, checked on each depth measured both with and without shortcuts."""
    by_name = {m["model"]: m for m in measured}
    pairs = [
        (m["depth"], m["plane_shape"], by_name[f"plain{m['depth']}"]["plane_shape"])
        for m in measured
        if m["family"] == "resnet" and f"plain{m['depth']}" in by_name
    ]
    found = []
    for depth, residual, plain in pairs:
        found.append(claim(
            f"ResNet-{depth}'s basin is wider than plain-{depth}'s",
            residual["basin_fraction"] > plain["basin_fraction"],
            f"{_share(residual['basin_fraction'])}% vs {_share(plain['basin_fraction'])}% of "
            "the grid",
        ))  # fmt: skip
        down_r, down_p = residual["downward_fraction"], plain["downward_fraction"]
        if down_r is not None and down_p is not None:
            found.append(claim(
                f"ResNet-{depth}'s surface curves downwards less often than plain-{depth}'s",
                down_r < down_p, f"{_share(down_r)}% vs {_share(down_p)}% of the points",
            ))  # fmt: skip
    gaps = {d: abs(r["basin_fraction"] - p["basin_fraction"]) for d, r, p in pairs}
    if 20 in gaps and 56 in gaps:
        found.append(claim(
            "Shortcuts matter more at 56 layers than at 20 (the basins differ more)",
            gaps[56] > gaps[20],
            f"basin gap {_share(gaps[56])} vs {_share(gaps[20])} points of the grid",
        ))  # fmt: skip
    return found


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"
