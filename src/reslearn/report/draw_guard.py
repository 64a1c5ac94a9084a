"""A run's report drawn after training (``train(..., draw=draw_run_guarded)``): a signal or a
failed write while drawing costs the figures, never the run.

By then the run's weights and summary.json are written and the training loop no longer turns
SIGINT/SIGTERM into a stop after the current step, so a SIGTERM would end the process without
a word. Here it ends drawing with ``ReportStopped``, a ``TrainingStopped`` whose message is the
loop's stop line and says how to draw the report again; the command line prints it as it
prints every stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from reslearn.report.run_report import draw_run
from reslearn.rundir import read_summary
from reslearn.train import TrainingStopped

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ReportStopped(TrainingStopped):
    """SIGINT or SIGTERM while a run's report was drawn; the run's files are intact and
    ``reslearn report RUN`` draws the report again."""


class _Signalled(BaseException):
    """Raised by the signal handler: a BaseException, so no ``except Exception`` inside the
    drawing code swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM raise ``_Signalled`` (only the main thread can
    handle signals; elsewhere nothing changes; a signal this process ignores stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Signalled(signum)

    previous = {
        signum: signal.signal(signum, handler)
        for signum in _SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def draw_run_guarded(run_dir: str | Path) -> Path | None:
    """``draw_run``, for ``train(draw=...)``: a SIGINT or SIGTERM while drawing raises
    ``ReportStopped``; a file that cannot be written is a warning (None is returned)."""
    run_dir = Path(run_dir)
    try:
        with _signals_raise():
            return draw_run(run_dir)
    except _Signalled as stop:
        raise report_stopped(run_dir, stop.signum) from None
    except OSError as error:
        warnings.warn(
            f"the report of {run_dir} was not drawn ({error}); the run's files are intact: "
            f"draw it again with: reslearn report {run_dir}",
            stacklevel=2,
        )
        return None


def report_stopped(run_dir: Path, signum: int) -> ReportStopped:
    """The stop for ``signum`` while ``run_dir``'s report was drawn, in the loop's words."""
    try:
        summary = read_summary(run_dir)
    except (OSError, ValueError):
        summary = None
    name = signal.Signals(signum).name
    again = f"draw the report again with: reslearn report {run_dir}"
    if summary and isinstance(summary.get("iterations"), int):
        steps = summary["iterations"]
        message = (
            f"stopped by {name} after step {steps} of {steps}, while drawing the report: "
            f"the weights and summary.json in {run_dir} are intact; {again}"
        )
    else:
        steps = 0
        message = f"stopped by {name} while drawing the report of {run_dir}; {again}"
    return ReportStopped(
        message, step=steps, checkpoint=None, exit_code=128 + signum, resumable=False
    )
