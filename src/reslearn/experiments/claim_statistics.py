"""The paper's claims decided with statistics over seeds, not by one comparison of one run.

A claim "A is lower than B" is decided from the differences B - A, paired by seed: it *holds*
when it holds for every seed and the 95% confidence interval of the mean difference (Student's
t) excludes zero on the paper's side, *fails* when the interval excludes zero on the other side,
and is *not decided* otherwise (one seed always is), with the seeds that would decide it where two
or more give a spread. A claim whose margin in the paper is below seed noise is reported with
its interval and those seeds, never as holding.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

HOLDS, FAILS, UNDECIDED = "holds", "fails", "not decided"
CONFIDENCE = 0.95


def binomial_se(error: float, count: int) -> float:
    """The standard error of a test error measured on ``count`` images (one run)."""
    return math.sqrt(error * (1 - error) / count) if count else float("nan")


def t_critical(dof: int) -> float:
    """Student's t quantile for a two-sided 95% interval with ``dof`` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof))


def mean_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and 95% t-interval of ``values`` (no interval for fewer than two)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    half = t_critical(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def seeds_to_decide(values: Sequence[float], limit: int = 1000) -> int | None:
    """The fewest seeds at which an interval as wide as these values' spread would exclude
    zero (their observed mean and std held fixed); None when nothing would (no spread known,
    or a mean of zero)."""
    if len(values) < 2:
        return None
    mean, spread = statistics.fmean(values), statistics.stdev(values)
    if spread == 0:
        return len(values) if mean else None
    if mean == 0:
        return None
    for n in range(2, limit + 1):
        if t_critical(n - 1) * spread / math.sqrt(n) < abs(mean):
            return n
    return None


def decide(
    text: str,
    lower: Mapping[int, float],
    higher: Mapping[int, float],
    *,
    unit: str = "points",
    scale: float = 100.0,
    below_noise: bool = False,
) -> dict[str, Any]:
    """The claim "``lower`` is below ``higher``" from values keyed by seed (paired on the seeds
    both have). ``scale`` shows the differences in ``unit`` (100: errors in points).
    ``below_noise``: the paper's margin is below seed noise; never reported as holding."""
    seeds = sorted(set(lower) & set(higher))
    differences = [higher[s] - lower[s] for s in seeds]
    per_seed = {str(s): bool(d > 0) for s, d in zip(seeds, differences, strict=True)}
    if not differences:
        return _record(text, UNDECIDED, [], {}, None, None, None, None, unit, scale, below_noise)
    mean, low, high = mean_interval(differences)
    verdict = UNDECIDED
    if low is not None and not below_noise:
        if all(per_seed.values()) and low > 0:
            verdict = HOLDS
        elif high < 0:
            verdict = FAILS
    needed = seeds_to_decide(differences)
    return _record(text, verdict, differences, per_seed, mean, low, high, needed, unit, scale,
                   below_noise)  # fmt: skip


def decide_slope(
    text: str, points: Sequence[tuple[int, float, float]], *, scale: float = 100.0
) -> dict[str, Any]:
    """The claim "the value falls as x grows" from (seed, x, value) points: the least-squares
    slope over every point with its 95% interval, and each seed's own slope; holds when every
    seed's slope is negative and the interval lies below zero, fails when it lies above. Two
    points (one seed, two depths) give a slope without an interval: not decided."""
    from scipy import stats

    xs = [x for _, x, _ in points]
    if len(set(xs)) < 2:
        return _record(text, UNDECIDED, [], {}, None, None, None, None, "points per layer",
                       scale, False)  # fmt: skip
    fit = stats.linregress(xs, [v for _, _, v in points])
    slope = float(fit.slope)
    low = high = None
    if len(points) >= 3:
        half = t_critical(len(points) - 2) * float(fit.stderr)
        low, high = slope - half, slope + half
    per_seed = {}
    for seed in sorted({s for s, _, _ in points}):
        mine = [(x, v) for s, x, v in points if s == seed]
        if len({x for x, _ in mine}) >= 2:
            per_seed[str(seed)] = bool(stats.linregress(*zip(*mine, strict=True)).slope < 0)
    verdict = UNDECIDED
    if high is not None and per_seed and all(per_seed.values()) and high < 0:
        verdict = HOLDS
    elif low is not None and low > 0:
        verdict = FAILS
    # the record's "difference" is the fall per layer (positive: the paper's side)
    fall_low, fall_high = (None, None) if low is None else (-high, -low)
    return _record(text, verdict, [], per_seed, -slope, fall_low, fall_high, None,
                   "points per layer", scale, False)  # fmt: skip


def _record(text, verdict, differences, per_seed, mean, low, high, needed, unit, scale,
            below_noise) -> dict[str, Any]:  # fmt: skip
    """A claim as results.json keeps it (``holds`` and ``evidence`` as every experiment's)."""
    if mean is None:
        evidence = "no paired runs"
    elif low is None:
        evidence = f"difference {scale * mean:+.2f} {unit} (one seed: no interval)"
    else:
        evidence = (
            f"difference {scale * mean:+.2f} {unit}, 95% CI [{scale * low:+.2f}, "
            f"{scale * high:+.2f}] over {len(per_seed)} seeds"
        )
    if below_noise:
        evidence += "; the paper's margin is below seed noise"
    # an undecided claim says how far it is from a verdict (a below-noise one stays undecided)
    if needed is not None and verdict == UNDECIDED and (below_noise or needed > len(differences)):
        evidence += f"; about {needed} seeds would decide it"
    return {
        "claim": text,
        "verdict": verdict,
        "holds": verdict == HOLDS,
        "evidence": evidence,
        "differences": differences,
        "per_seed": per_seed,
        "mean_difference": mean,
        "ci_low": low,
        "ci_high": high,
        "seeds_to_decide": needed,
        "below_seed_noise": below_noise,
        "unit": unit,
        "scale": scale,
    }
