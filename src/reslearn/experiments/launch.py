"""Training an experiment's runs in parallel: as processes on this machine (``local``) or as one
SLURM job per run through submitit (``slurm``).

Every job trains one run into the experiment's ``runs/`` folder exactly as the inline loop does
(``base.ensure_run``: reuse, resume or train), so the results, the report and the reuse of
finished runs are the same whichever launcher trained them. Each job's output goes to a log
file under ``OUT/logs``, which ends saying why when the job failed; a failed job is named with
its log, the others are kept, and running the command again submits only the runs that are not
finished.

A stop (SIGINT, SIGTERM) is passed on to every local job (``job_signals``); once every job has
ended, the experiment says how each ended and exits with 130 or 143.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reslearn.errors import KNOWN_ERRORS, UserError, one_line
from reslearn.experiments.base import FinishedRun, PlannedRun, ensure_run
from reslearn.experiments.job_signals import (
    JobProcess,
    handle_stops_in_job,
    signals_held,
    stops_passed_on,
    stops_raised,
)
from reslearn.rundir import is_finished, latest_checkpoint
from reslearn.train.loop import TrainingStopped

LOGS = "logs"
#: How a job ended (``_ending``).
FINISHED, STOPPED, NOT_STARTED, FAILED = "finished", "stopped", "not started", "failed"


class JobsFailed(UserError):
    """Some runs' jobs failed; the message names each with its log. Finished runs are kept."""


class _NotStarted(Exception):
    """A job handed to a process after the experiment was stopped: it did not start."""


@dataclass(frozen=True)
class LocalLauncher:
    """``jobs`` training processes at once on this machine (default: one per GPU where there
    are several, else 2): one GPU each where there are several, else the CPU's threads split
    between them (``threads`` each, default: cores/jobs)."""

    jobs: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.jobs is not None:
            _check_jobs(self.jobs)

    def ensure_all(self, planned: list[PlannedRun], root: Path) -> list[FinishedRun]:
        """Train the runs that are not finished, ``jobs`` at a time; returns them all."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        todo = _announce(planned, root)
        if not todo:
            return _finished(planned, root, trained=set())
        gpus = _gpu_count()
        jobs = min(self.jobs or (gpus if gpus > 1 else 2), len(todo))
        threads = self.threads or max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        devices, stopped = context.Queue(), context.Event()
        for index in range(jobs):
            devices.put(index % gpus if gpus > 1 else None)
        where = f"{gpus} GPUs" if gpus > 1 else f"{threads} CPU threads each"
        print(f"training {len(todo)} of {len(planned)} runs, {jobs} at a time ({where}); each "
              f"job's output: {root / LOGS}/RUN.log", file=sys.stderr)  # fmt: skip
        pool = ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_start_worker, initargs=(devices, stopped)
        )
        with pool, stops_passed_on(pool, stopped) as received:
            with signals_held():  # until each job's process has set its own handlers
                futures = {
                    pool.submit(train_job, run, str(root / "runs" / run.name), label, threads,
                                str(_log(root, run.name))): (run, label)
                    for run, label in todo
                }  # fmt: skip
            endings = _collect(futures, root, received)
        return _outcome(planned, root, todo, endings, received)


@dataclass(frozen=True)
class SlurmLauncher:
    """One SLURM job per run through submitit, at most ``jobs`` running at once (None: all).
    ``cluster`` is submitit's: "slurm", or "local" (the same code path as subprocesses on this
    machine, which is what the tests use)."""

    jobs: int | None = None
    partition: str | None = None
    time_minutes: int = 240
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    cluster: str = "slurm"

    def __post_init__(self) -> None:
        if self.jobs is not None:
            _check_jobs(self.jobs)
        if self.time_minutes < 1:
            raise UserError(f"--time must be at least 1 minute; got {self.time_minutes}")
        if self.cpus_per_job < 1:
            raise UserError(f"--cpus-per-job must be at least 1; got {self.cpus_per_job}")
        if self.gpus_per_job < 0:
            raise UserError(f"--gpus-per-job must be 0 or more; got {self.gpus_per_job}")
        check_slurm_available(self.cluster)

    def ensure_all(self, planned: list[PlannedRun], root: Path) -> list[FinishedRun]:
        """Submit a job for each run that is not finished, wait for them all; returns the runs."""
        import submitit

        todo = _announce(planned, root)
        if not todo:
            return _finished(planned, root, trained=set())
        executor = submitit.AutoExecutor(folder=root / LOGS / "submitit", cluster=self.cluster)
        executor.update_parameters(
            timeout_min=self.time_minutes,
            gpus_per_node=self.gpus_per_job,
            cpus_per_task=self.cpus_per_job,
            slurm_partition=self.partition,
            slurm_array_parallelism=self.jobs or len(todo),
            name=f"reslearn-{root.name}",
        )
        with executor.batch():  # one job array: at most ``jobs`` of them running at once
            jobs = [
                executor.submit(train_job, run, str(root / "runs" / run.name), label,
                                self.cpus_per_job, None)
                for run, label in todo
            ]  # fmt: skip
        submitted = [(job, run, label) for job, (run, label) in zip(jobs, todo)]
        for job, run, label in submitted:
            print(f"{label} {run.name}: job {job.job_id} submitted", file=sys.stderr)
        endings = {}
        with stops_raised() as received:
            try:
                for job, run, label in submitted:
                    error = _job_error(job)
                    log = Path(job.paths.stderr)
                    endings[run.name] = _ending(run, label, error, log, root, stopping=False)
            except KeyboardInterrupt:
                signum = received[0] if received else signal.SIGINT
                ids = " ".join(str(job.job_id) for job, _, _ in submitted)
                raise TrainingStopped(
                    f"stopped by {signal.Signals(signum).name}: stopped waiting; the jobs go on "
                    f"on the cluster ({ids}): run the same command again when they are done to "
                    "collect them (scancel to stop them)",
                    step=0, checkpoint=None, exit_code=128 + signum,
                ) from None  # fmt: skip
        return _outcome(planned, root, todo, endings, [])


def check_slurm_available(cluster: str = "slurm") -> None:
    """Refuse at once, in one line, when submitit or (for SLURM) ``sbatch`` is missing."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise UserError(
            "--launcher slurm needs submitit: pip install 'reslearn[cluster]'"
        ) from None
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UserError(
            "--launcher slurm needs SLURM's sbatch on PATH (run it on the cluster's login "
            "node), or use --launcher local"
        )


def train_job(
    run: PlannedRun, run_dir: str, label: str, threads: int | None, log: str | None
) -> str:
    """One job: reuse, resume or train ``run`` in ``run_dir`` with ``threads`` CPU threads,
    its output (log lines, not progress bars, and why it failed) into ``log`` when given;
    returns the run's name. In a process the experiment stopped it does not start."""
    import torch

    if not JobProcess.may_start():
        raise _NotStarted(f"{run.name}: not started, the experiment was stopped")
    if threads:
        torch.set_num_threads(threads)
    with _output_to(log):
        JobProcess.busy = True
        try:
            ensure_run(run, Path(run_dir), quiet=True, label=label)
        except BaseException as error:
            _say_why(error, f"{label} {run.name}")
            raise
        finally:
            JobProcess.busy = False
    return run.name


def _say_why(error: BaseException, what: str) -> None:
    """Why a job ended early, as its log's last line (after the traceback of a bug)."""
    if isinstance(error, KeyboardInterrupt):
        print(f"{what}: stopped at once (the experiment was stopped)", file=sys.stderr)
    elif isinstance(error, TrainingStopped):
        print(f"{what}: {one_line(error)}", file=sys.stderr)
    else:
        if not isinstance(error, KNOWN_ERRORS):
            traceback.print_exception(error)
        print(f"{what}: FAILED: {one_line(error)}", file=sys.stderr)


def _check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1; got {jobs}")


def _announce(planned: list[PlannedRun], root: Path) -> list[tuple[PlannedRun, str]]:
    """Say which runs are reused; returns the others with their ``[n/N]`` labels."""
    todo = []
    for number, run in enumerate(planned, 1):
        label = f"[{number}/{len(planned)}]"
        if is_finished(root / "runs" / run.name):
            print(f"{label} {run.name}: finished earlier, reused", file=sys.stderr)
        else:
            todo.append((run, label))
    return todo


def _log(root: Path, name: str) -> Path:
    return root / LOGS / f"{name}.log"


def _collect(
    futures: dict[Any, tuple[PlannedRun, str]], root: Path, received: list[int]
) -> dict[str, tuple[str, str, Path]]:
    """Wait for every job, saying how each ended; once a stop came (``received``), the jobs
    not yet handed to a process are cancelled. Returns each run's ``_ending``."""
    from concurrent.futures import FIRST_COMPLETED, wait

    endings, pending = {}, dict(futures)
    while pending:
        done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        for future in list(pending):
            if future in done or (received and future.cancel()):
                run, label = pending.pop(future)
                error = _NotStarted() if future.cancelled() else future.exception()
                log, stopping = _log(root, run.name), bool(received)
                endings[run.name] = _ending(run, label, error, log, root, stopping=stopping)
    return endings


def _ending(
    run: PlannedRun,
    label: str,
    error: BaseException | None,
    log: Path,
    root: Path,
    *,
    stopping: bool,
) -> tuple[str, str, Path]:
    """How a job ended, (kind, words, log), said in one line. ``stopping``: the experiment was
    stopped, so a job that stopped or never started did what it was asked."""
    if error is None:
        kind, words = FINISHED, "finished"
    elif isinstance(error, _NotStarted):
        kind, words = NOT_STARTED, "not started"
    elif stopping and isinstance(error, TrainingStopped) and error.resumable:
        kind, words = STOPPED, f"stopped at a checkpoint (step {error.step})"
    elif stopping and isinstance(error, KeyboardInterrupt):
        kept = latest_checkpoint(root / "runs" / run.name)
        where = f"its checkpoint {kept.name} kept" if kept else "before its first checkpoint"
        kind, words = STOPPED, f"stopped at once, {where}"
    else:
        kind, words = FAILED, f"FAILED: {one_line(error)[-300:]}"
    where = "" if kind == NOT_STARTED else f" (log: {log})"
    print(f"{label} {run.name}: {words}{where}", file=sys.stderr)
    return kind, words, log


def _outcome(
    planned: list[PlannedRun],
    root: Path,
    todo: list,
    endings: dict[str, tuple[str, str, Path]],
    received: list[int],
) -> list[FinishedRun]:
    """The finished runs; TrainingStopped (130 / 143) saying how each job ended when the
    experiment was stopped; else JobsFailed naming each failed one with its log."""
    if received:
        said = ", ".join(f"{run.name} {endings[run.name][1].split(':')[0]}" for run, _ in todo)
        raise TrainingStopped(
            f"stopped by {signal.Signals(received[0]).name}: {said}; no job is left running",
            step=0, checkpoint=None, exit_code=128 + received[0],
        )  # fmt: skip
    failures = [f"{name} (log: {log})" for name, (kind, _, log) in endings.items()
                if kind == FAILED]  # fmt: skip
    if failures:
        raise JobsFailed(
            f"{len(failures)} of {len(todo)} jobs failed: {'; '.join(failures)}. "
            "The other runs are kept; run the same command again to train only what is missing"
        )
    return _finished(planned, root, trained={run.name for run, _ in todo})


def _finished(planned: list[PlannedRun], root: Path, *, trained: set[str]) -> list[FinishedRun]:
    return [
        FinishedRun(run, root / "runs" / run.name, reused=run.name not in trained)
        for run in planned
    ]


def _job_error(job: Any) -> BaseException | None:
    """A submitit job's failure (None when it finished)."""
    try:
        job.result()
    except KeyboardInterrupt:
        raise
    except Exception as error:  # submitit's FailedJobError carries the job's own error text
        return error
    return None


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _start_worker(devices: Any, stopped: Any) -> None:
    """A job process's start: its signal handlers set (``job_signals``), then one GPU claimed
    (before CUDA starts in this process), or none."""
    handle_stops_in_job(stopped)
    device = devices.get()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device)


@contextlib.contextmanager
def _output_to(log: str | None) -> Iterator[None]:
    """This process's stdout and stderr (native libraries' too) appended to ``log``."""
    if log is None:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
