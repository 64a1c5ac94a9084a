"""Stopping a sweep of local jobs: SIGINT or SIGTERM to the experiment's process (Ctrl-C at
the terminal, or ``kill`` of that process alone) is passed on to every job's process as SIGTERM.

A job ignores SIGINT, so a Ctrl-C, which the terminal sends to every process of the group,
reaches each job once, through the experiment. In a job, SIGTERM is the training loop's stop
(after the current step, with a checkpoint); outside the loop it stops the job at once. Once the
experiment was stopped no further job starts (it sets an Event every job's process shares). A
second signal stops the jobs at once. The experiment itself waits until every job has ended, so
no process is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

STOPS = (signal.SIGINT, signal.SIGTERM)


class JobProcess:
    """A local job's process and its stop, SIGTERM (the experiment passes every stop on as
    one): in the training loop, the loop's own handler stops after the current step with a
    checkpoint; elsewhere in a job (``busy``) it stops at once; ``stopped`` (the experiment's
    Event) keeps further jobs from starting."""

    busy = False
    stopped: Any = None  # the experiment's multiprocessing Event, set once it was stopped

    @classmethod
    def may_start(cls) -> bool:
        """Whether a job may start: the experiment was not stopped."""
        return cls.stopped is None or not cls.stopped.is_set()

    @classmethod
    def stop(cls, signum: int, frame: Any) -> None:
        """The SIGTERM handler outside the training loop."""
        if cls.busy:
            raise KeyboardInterrupt


def handle_stops_in_job(stopped: Any) -> None:
    """In a job's process, first thing: SIGINT ignored, SIGTERM taken as a stop
    (``JobProcess.stop``), then both let through (held since the process began:
    ``signals_held``); ``stopped`` is the experiment's Event (``stops_passed_on``)."""
    JobProcess.stopped = stopped
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, JobProcess.stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held (delivered on the way out, not lost) while the jobs' processes
    start: they inherit the held signals until ``handle_stops_in_job`` has set their handlers, so a
    Ctrl-C in their first seconds cannot kill one half-started."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def stops_passed_on(pool: Any, stopped: Any) -> Iterator[list[int]]:
    """While the pool trains: SIGINT and SIGTERM to this process set ``stopped`` (the Event
    the jobs' processes share: no further job starts) and are passed on to every job's process
    as SIGTERM (each stops after its current step with a checkpoint; a second signal stops
    them at once). Yields the signals received, oldest first."""
    received: list[int] = []

    def pass_on(signum: int, frame: Any) -> None:
        received.append(signum)
        stopped.set()
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGTERM)

    with _handlers(pass_on):
        yield received


@contextlib.contextmanager
def stops_raised() -> Iterator[list[int]]:
    """SIGINT and SIGTERM raise KeyboardInterrupt inside the block; yields the signals
    received (SlurmLauncher's wait: SIGTERM ends it as Ctrl-C does, with 143)."""
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    with _handlers(stop):
        yield received


@contextlib.contextmanager
def _handlers(handler: Any) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM inside the block (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOPS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
