"""What rank 0 hands each metrics record to besides metrics.jsonl: TensorBoard, and a live
redraw of the run's report (curves.png and report.html), so that a person who opens the page
during a long run sees where it is. The redraw follows evaluations, at most once a minute
(drawing takes a second or two), and never stops the run: a figure that fails is skipped."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The least time between two live redraws of a run's report.
REDRAW_EVERY_S = 60.0

Log = Callable[[dict[str, Any]], None]


def tee(*logs: Log | None) -> Log:
    """A log hook that hands each record to every one of ``logs`` in order (None: left out)."""
    chosen = [log for log in logs if log is not None]

    def log(record: dict[str, Any]) -> None:
        for each in chosen:
            each(record)

    return log


class LiveRedraw:
    """A log hook: after an evaluation record before the last step, ``draw(run_dir)`` again
    when ``every_s`` seconds passed since the last time (the first evaluation always draws)."""

    def __init__(
        self, draw: Callable[[Path], Any], run_dir: Path, total: int, *,
        every_s: float = REDRAW_EVERY_S,
    ) -> None:  # fmt: skip
        self.draw, self.run_dir, self.total, self.every_s = draw, run_dir, total, every_s
        self.last: float | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        evaluated = any(k.endswith("_error") and not k.startswith("train") for k in record)
        if not evaluated or record.get("step", 0) >= self.total:
            return  # the finished run is drawn by the run itself
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every_s:
            return
        self.last = now
        with contextlib.suppress(Exception):  # a live figure is a convenience, never a failure
            self.draw(self.run_dir)
