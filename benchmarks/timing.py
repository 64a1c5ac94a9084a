"""Timing that can be trusted on a shared machine: every entry (a training setting, a matmul
peak, an inference path) is timed in interleaved rounds of at least a few seconds each, so a
noisy neighbour slows them all alike; every figure is the median of its rounds with the min-max
spread beside it, and entries that measure the same work ("duplicates") must agree within 5% or
the run is marked "noisy, rerun".

An entry is a function ``run(seconds) -> rate`` that repeats its work for at least ``seconds``
and returns its rate (images/s, TFLOP/s, ...).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Duplicates whose medians differ by more than this fraction mark the run noisy.
DUPLICATE_TOLERANCE = 0.05

Entry = Callable[[float], float]


@dataclass
class Figure:
    """The rates one entry measured, one per round."""

    samples: list[float]

    @property
    def median(self) -> float:
        """The figure reported: the median round."""
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        """The slowest round."""
        return min(self.samples)

    @property
    def high(self) -> float:
        """The fastest round."""
        return max(self.samples)

    def text(self, digits: int = 0) -> str:
        """``1,234 (1,100-1,300)``: the median and the spread of the rounds."""
        return f"{self.median:,.{digits}f} ({self.low:,.{digits}f}-{self.high:,.{digits}f})"


def repeat_for(seconds: float, work: Callable[[], int], synchronize: Callable[[], None]) -> float:
    """Call ``work`` (which returns how many units it did) until ``seconds`` have passed;
    returns units per second."""
    synchronize()
    done, start = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    synchronize()
    return done / (time.perf_counter() - start)


def interleaved(entries: dict[str, Entry], rounds: int, seconds: float) -> dict[str, Figure]:
    """Each entry once untimed (warm-up), then ``rounds`` rounds that time every entry once."""
    for run in entries.values():
        run(min(seconds, 0.5))
    figures = {name: Figure([]) for name in entries}
    for _ in range(rounds):
        for name, run in entries.items():
            figures[name].samples.append(run(seconds))
    return figures


def disagreement(figures: dict[str, Figure], duplicates: Iterable[str]) -> float:
    """How far apart the medians of entries that measure the same work are (max/min - 1)."""
    medians = [figures[name].median for name in duplicates if name in figures]
    if len(medians) < 2:
        return 0.0
    return max(medians) / min(medians) - 1


def noise_verdict(figures: dict[str, Figure], duplicates: Iterable[str]) -> str:
    """One line: the duplicates' agreement, and "noisy, rerun" when it exceeds 5%."""
    names = [name for name in duplicates if name in figures]
    gap = disagreement(figures, names)
    shown = ", ".join(f"{name} {figures[name].median:,.0f}" for name in names)
    if gap > DUPLICATE_TOLERANCE:
        return f"NOISY, RERUN: duplicates disagree by {gap:.1%} (> 5%): {shown}"
    return f"duplicates agree within {gap:.1%}: {shown}"
