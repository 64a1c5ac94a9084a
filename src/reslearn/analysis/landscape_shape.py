"""Numbers that compare the shapes of loss landscapes (``analysis.landscape``): the loss at the
centre and at the edges, how wide the basin around the centre is, how sharply it curves there,
and how much of the surface curves downwards (a convex basin has none).

A non-finite loss (a far point where the network overflows) counts as outside the basin and is
left out of means; it is counted, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The basin is where the loss stays below the centre's plus this much (nats): the same rise for
#: every network, however well it was trained (chance on 10 classes is ln 10 = 2.3).
BASIN_RISE = 1.0
#: The highest of the paper's contour levels (0.1 to 10 every 0.5): the surface above it is
#: off the plots and out of the curvature count.
PLOTTED_LOSS = 10.0


def contour_levels() -> list[float]:
    """The contour levels of Li et al.'s plots: 0.1, 0.6, ..., 9.6 (their vmin, vmax, vlevel)."""
    return [round(float(x), 2) for x in np.arange(0.1, PLOTTED_LOSS, 0.5)]


def line_shape(coefficients: Sequence[float], losses: Sequence[float]) -> dict:
    """The 1-D curve's centre loss, its loss at both ends, the width of the basin (where the
    loss stays below centre + ``BASIN_RISE``, the crossings interpolated linearly; whether it
    reaches an end) and the second difference at the centre (d^2 loss / d alpha^2)."""
    x, y = np.asarray(coefficients, dtype=float), np.asarray(losses, dtype=float)
    centre = _centre_index(x)
    threshold = y[centre] + BASIN_RISE
    left, left_open = _crossing(x, y, centre, -1, threshold)
    right, right_open = _crossing(x, y, centre, 1, threshold)
    return {
        "centre_loss": _finite(y[centre]),
        "edge_losses": [_finite(y[0]), _finite(y[-1])],
        "basin_width": None if not np.isfinite(y[centre]) else right - left,
        "basin_reaches_edge": left_open or right_open,
        "centre_curvature": _second_difference(x, y, centre),
        "non_finite": int((~np.isfinite(y)).sum()),
    }


def plane_shape(coefficients: Sequence[float], losses: Sequence[Sequence[float]]) -> dict:
    """The 2-D surface's numbers (``losses[i][j]`` at alpha ``coefficients[j]``, beta
    ``coefficients[i]``): the centre loss, the mean loss on the grid's border, the share of the
    grid in the basin around the centre (connected, below centre + ``BASIN_RISE``), the second
    difference at the centre along each direction, and the share of the interior points below
    ``PLOTTED_LOSS`` where the loss curves downwards along either direction."""
    x, z = np.asarray(coefficients, dtype=float), np.asarray(losses, dtype=float)
    centre = _centre_index(x)
    border = np.concatenate([z[0], z[-1], z[1:-1, 0], z[1:-1, -1]])
    finite_border = border[np.isfinite(border)]
    basin = _basin(z, centre, z[centre, centre] + BASIN_RISE)
    return {
        "centre_loss": _finite(z[centre, centre]),
        "edge_mean_loss": float(finite_border.mean()) if len(finite_border) else None,
        "basin_fraction": float(basin.mean()),
        "centre_curvature": [
            _second_difference(x, z[centre, :], centre),
            _second_difference(x, z[:, centre], centre),
        ],
        "downward_fraction": _downward_fraction(z),
        "non_finite": int((~np.isfinite(z)).sum()),
        "points": int(z.size),
    }


def _centre_index(x: np.ndarray) -> int:
    """The index of coefficient 0, which a landscape's axis must hold (an odd count)."""
    centre = int(np.argmin(np.abs(x)))
    if len(x) < 3 or abs(x[centre]) > 1e-9:
        raise ValueError(f"an axis needs 0 and points on both sides of it; got {x.tolist()}")
    return centre


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _crossing(
    x: np.ndarray, y: np.ndarray, centre: int, step: int, threshold: float
) -> tuple[float, bool]:
    """Where the loss first reaches ``threshold`` walking from the centre by ``step``: the
    coefficient (interpolated) and whether the walk reached the end without crossing."""
    i = centre
    while 0 <= i + step < len(x):
        after = y[i + step]
        if not np.isfinite(after) or after >= threshold:
            if not np.isfinite(after):
                return float(x[i]), False
            share = (threshold - y[i]) / (after - y[i])
            return float(x[i] + share * (x[i + step] - x[i])), False
        i += step
    return float(x[i]), True


def _second_difference(x: np.ndarray, y: np.ndarray, i: int) -> float | None:
    """(y[i-1] - 2 y[i] + y[i+1]) / h^2 on an evenly spaced axis."""
    value = (y[i - 1] - 2 * y[i] + y[i + 1]) / (x[i + 1] - x[i]) ** 2
    return _finite(value)


def _basin(z: np.ndarray, centre: int, threshold: float) -> np.ndarray:
    """The points connected to the centre (through neighbours up, down, left and right) whose
    loss is below ``threshold``."""
    inside = np.isfinite(z) & (z < threshold)
    basin = np.zeros_like(inside)
    stack = [(centre, centre)] if inside[centre, centre] else []
    while stack:
        i, j = stack.pop()
        if basin[i, j]:
            continue
        basin[i, j] = True
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= a < z.shape[0] and 0 <= b < z.shape[1] and inside[a, b] and not basin[a, b]:
                stack.append((a, b))
    return basin


def _downward_fraction(z: np.ndarray) -> float | None:
    """The share of interior points below ``PLOTTED_LOSS`` whose second difference along either
    direction is negative; None when there are none."""
    centre = z[1:-1, 1:-1]
    along_alpha = z[1:-1, :-2] - 2 * centre + z[1:-1, 2:]
    along_beta = z[:-2, 1:-1] - 2 * centre + z[2:, 1:-1]
    counted = np.isfinite(along_alpha) & np.isfinite(along_beta) & (centre < PLOTTED_LOSS)
    if not counted.any():
        return None
    downward = (along_alpha < 0) | (along_beta < 0)
    return float(downward[counted].mean())
