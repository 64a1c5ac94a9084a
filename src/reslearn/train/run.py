"""A training run on disk, step by step: settle the run folder (new, overwritten, resumed, or
restarted by torchrun) and lock it; prepare the data; build the network; choose its precision;
start or resume the trainer; train; write the finished run's files (``reslearn.rundir`` names
them). Figures and the report page are the caller's: ``train(..., draw=...)`` hands it the
folder once training stopped, and the command line passes ``reslearn.report.draw_run``."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from reslearn.atomic import remove_temporaries
from reslearn.models import ResNet, create_model
from reslearn.rundir import CHECKPOINTS, CONFIG, TENSORBOARD, read_config
from reslearn.rundir.lock import FolderInUse, FolderLock
from reslearn.rundir.marker import (
    MARKER,
    check_run_dir,
    clear_run_dir,
    contents,
    new_run_id,
    write_marker,
)
from reslearn.train.assemble import assemble_trainer
from reslearn.train.checkpoint import load_latest_checkpoint
from reslearn.train.config import RunConfig, TrainConfig
from reslearn.train.distributed import Distributed
from reslearn.train.distributed import setup as setup_distributed
from reslearn.train.environment import environment
from reslearn.train.live_report import REDRAW_EVERY_S, LiveRedraw, tee
from reslearn.train.loop import LoopHooks, TrainingLoop
from reslearn.train.prepare import Prepared, prepare
from reslearn.train.pretrained_init import InitReport, init_model_options, load_initial_weights
from reslearn.train.resume import (
    checkpoint_acceptor,
    data_changed,
    record_data_change,
    recorded_precision,
    restarted_run,
)
from reslearn.train.tensorboard import TensorBoardLog
from reslearn.train.tensorboard import check as check_tensorboard
from reslearn.train.trainer import Trainer, check_batch_split
from reslearn.train.writer import RunWriter

#: What ``train`` hands the run folder to once training stopped, finished or not (rank 0).
Draw = Callable[[Path], None]


@dataclass
class RunResult:
    """Where a finished run is and how it ended."""

    run_dir: Path
    config: RunConfig  # the settings as resolved
    final: dict[str, Any]
    wall_time_s: float


def default_run_dir(config: TrainConfig, data_name: str) -> Path:
    """``runs/<model>-<data>-<recipe>-<time>``: a new folder for every run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model}-{data_name}-{config.recipe}-{stamp}"


@dataclass
class _Session:
    """One session of a run: what the steps of ``train`` read and add to."""

    given: TrainConfig  # the settings as given (as saved, when resuming)
    config: TrainConfig  # with the recipe's data-independent defaults filled in (with_recipe)
    where: Distributed
    device: torch.device
    quiet: bool
    out: Path | None
    overwrite: bool
    allow_data_change: bool
    resume: Path | None
    started: float = field(default_factory=time.perf_counter)
    locks: list[FolderLock] = field(default_factory=list)
    run_dir: Path | None = None
    run_id: str | None = None
    saved: dict[str, Any] | None = None  # a resumed run's config.json
    log_window: dict[str, Any] | None = None  # the window its checkpoint saved (resumed runs)
    tensorboard: str | Path | bool = False  # a folder for TensorBoard events (True: RUN's)
    board: TensorBoardLog | None = None  # rank 0's TensorBoard writer, once the folder is known
    redraw: Draw | None = None  # the report's live redraw at evaluations (rank 0)
    redraw_every_s: float = REDRAW_EVERY_S

    @property
    def speak(self) -> bool:
        """Whether this process shows progress (rank 0, unless --quiet)."""
        return not self.quiet and self.where.is_main


def train(
    config: TrainConfig | None,
    out: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    allow_data_change: bool = False,
    draw: Draw | None = None,
    tensorboard: str | Path | bool = False,
    redraw: Draw | None = None,
    redraw_every_s: float = REDRAW_EVERY_S,
) -> RunResult:
    """Train ``config`` into a run folder (new, overwritten, or resumed from its checkpoint).

    Under torchrun every process calls this; rank 0 alone writes the folder. After torchrun
    restarted the job (``--max-restarts``) the run in ``out`` resumes from its last checkpoint.
    The folder is locked for the run's life (rank 0 holds the lock); another process training
    into it is refused. A resumed run refuses data whose classes changed, and data whose images
    changed unless ``allow_data_change``. ``draw(run_dir)`` runs on rank 0 once training
    stopped (curves, confusion matrix, report: ``reslearn.report.draw_run``). ``tensorboard``:
    rank 0 also writes TensorBoard events into that folder (True: RUN/tensorboard), the
    drawn figures too once the run finished; refused at once where tensorboard is missing.
    ``redraw(run_dir)``: rank 0 redraws the report at evaluations while training, at most once
    every ``redraw_every_s`` seconds (``reslearn.report.draw_run``: "in progress" until done).
    """
    if tensorboard is not False:
        check_tensorboard(tensorboard)
    saved = None
    if resume is not None:
        saved = read_config(resume, needs=("settings", "resolved"))
        config = TrainConfig.load(Path(resume) / CONFIG)
    if config is None:
        raise ValueError("train() needs a config unless it resumes a run (resume=RUN_DIR)")
    where, device = setup_distributed(config.device)
    session = _Session(
        given=config, config=config, where=where, device=device, quiet=quiet,
        out=None if out is None else Path(out), overwrite=overwrite,
        allow_data_change=allow_data_change, resume=None if resume is None else Path(resume),
        saved=saved, tensorboard=tensorboard, redraw=redraw, redraw_every_s=redraw_every_s,
    )  # fmt: skip
    failed = True
    try:
        result = _run(session, draw)
        failed = False
        return result
    finally:
        if session.board is not None:
            session.board.close()
        for lock in session.locks:
            _release(lock, failed)
        where.close()


def _run(s: _Session, draw: Draw | None) -> RunResult:
    _settle_before_data(s)
    with s.where.main_first():  # rank 0 fills the decode cache, the others read it
        data = prepare(s.config, s.device, progress=s.speak)
    try:
        change = _settle_after_data(s, data)
        model, init_report = _build_model(s, data)
        trainer, resolved, choice = assemble_trainer(
            s.config, model, data, device=s.device, where=s.where,
            recorded=recorded_precision(s.saved) if s.saved is not None else None,
        )  # fmt: skip
        writer, start = _start_or_resume(s, trainer, data, change)
        if writer is not None and s.tensorboard is not False:
            folder = s.run_dir / TENSORBOARD if s.tensorboard is True else s.tensorboard
            s.board = TensorBoardLog(folder, start)
        if writer is not None and s.saved is None:
            writer.start(_config_record(s, resolved, data, choice, init_report), data, s.given.seed)
        loop_started = time.perf_counter()
        final = _fit(s, trainer, writer, start, draw)
    finally:
        data.close()
    # rank 0 counts every session of a resumed run; the others this session
    wall = writer.training_seconds() if writer else time.perf_counter() - loop_started
    if writer is not None:
        writer.finish(trainer, data, final, _summary(s, resolved, data, final, wall))
        if draw is not None:
            draw(s.run_dir)
        if s.board is not None:
            s.board.add_figures(s.run_dir, resolved.iterations)
    s.where.barrier()
    return RunResult(s.run_dir, resolved, final, wall)


# -- the folder -----------------------------------------------------------------------------------


def _settle_before_data(s: _Session) -> None:
    """Which folder, checked and locked before any data is read; settings refused early."""
    if s.resume is None:
        restarted, again = restarted_run(s.out, s.where)
        if restarted is not None:  # torchrun restarted the job: continue the run in --out
            s.resume, s.saved = restarted, read_config(restarted, needs=("settings", "resolved"))
            s.given = TrainConfig.load(restarted / CONFIG)
        s.overwrite = s.overwrite or again
    s.config = s.given.with_recipe()
    if s.resume is None:
        if s.out is not None:
            check_run_dir(s.out, overwrite=s.overwrite)
        if s.config.init:  # a broken --init file is named before the data is decoded
            options = init_model_options(s.config.init, s.config.model, s.config.model_options)
            s.config = dataclasses.replace(s.config, model_options=options)
    else:  # the options the run was built with (--init may have added some)
        options = s.saved["resolved"]["model_options"]
        s.config = dataclasses.replace(s.config, model_options=options)
    _check_processes(s)
    s.where.barrier()  # every process has checked the folder before rank 0 writes into it
    folder = s.resume if s.resume is not None else s.out
    if folder is not None:
        _lock(folder, s)


def _settle_after_data(s: _Session, data: Prepared) -> str | None:
    """A new run's folder made and marked (its default name needs the data's); a resumed run's
    data compared with what it started on. Returns the allowed change of images, if any."""
    if s.resume is not None:
        s.run_dir = s.resume
        s.run_id = s.saved.get("run_id")  # None for a run made before run ids
        return data_changed(s.run_dir, s.saved, data, s.allow_data_change)
    s.run_dir = s.out if s.out is not None else default_run_dir(s.config, data.name)
    if s.out is None:
        check_run_dir(s.run_dir, overwrite=s.overwrite)
        _lock(s.run_dir, s)
    if s.where.is_main:
        s.run_id = _new_run(s.run_dir, s.overwrite)
    return None


def _check_processes(s: _Session) -> None:
    """Settings that depend on the processes, refused before any data is read."""
    if s.where.enabled and s.out is None and s.resume is None:
        raise ValueError("give --out with several processes, so that they share one folder")
    if s.config.sync_bn and (not s.where.enabled or s.device.type != "cuda"):
        raise ValueError(
            "--sync-bn needs several GPU processes (torchrun with NCCL); on CPUs each "
            "process normalises with its own batch statistics"
        )
    check_batch_split(s.config.batch_size, s.where.world, s.config.accumulate)


def _lock(folder: Path, s: _Session) -> None:
    """Rank 0 locks ``folder`` for the run's life (and removes the temporary files a killed
    process left in it); every process learns whether it could."""
    refused = None
    if s.where.is_main:
        try:
            s.locks.append(FolderLock(folder))
        except FolderInUse as error:
            refused = error
        else:
            remove_temporaries(folder)
    (anyone,) = s.where.any(refused is not None, device=s.device)
    if refused is not None:
        raise refused
    if anyone:
        raise FolderInUse(f"{folder} is in use by another reslearn process")


def _release(lock: FolderLock, failed: bool) -> None:
    """Unlock; a folder this run created and left without any file of its own goes too."""
    if failed and lock.created and not contents(lock.folder):
        (lock.folder / MARKER).unlink(missing_ok=True)
        lock.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            lock.folder.rmdir()
    lock.release()


def _new_run(run_dir: Path, overwrite: bool) -> str:
    """Under the folder's lock: clear what an earlier run left (with ``overwrite``; printing
    what goes), mark the folder as a new run's, and return the run's id."""
    if contents(run_dir):
        if not overwrite:  # a run finished in it since the folder was checked
            raise ValueError(
                f"output folder {run_dir} exists; pass --resume {run_dir} to continue it "
                "or --overwrite to replace it"
            )
        clear_run_dir(run_dir)
    run_id = new_run_id()
    write_marker(run_dir, run_id)
    return run_id


# -- the network and the trainer ------------------------------------------------------------------


def _build_model(s: _Session, data: Prepared) -> tuple[ResNet, InitReport | None]:
    """The network, seeded, from --init weights for a new run, on the device."""
    c = s.config
    torch.manual_seed(c.seed)
    model = create_model(
        c.model, num_classes=len(data.classes), in_channels=data.channels,
        **c.built_model_options(data.image_size),
    )  # fmt: skip
    report = None
    if c.init and s.resume is None:
        report = load_initial_weights(c.init, model, c.model)
        if s.speak:
            print(
                f"initialised from {c.init}: {report.tensors} tensors, head {report.head}",
                file=sys.stderr,
            )
    if c.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(s.device), report


def _start_or_resume(
    s: _Session, trainer: Trainer, data: Prepared, change: str | None
) -> tuple[RunWriter | None, int]:
    """Rank 0's writer for the folder (None elsewhere) and the step to start at; a resumed
    trainer gets its newest checkpoint that is this run's and fits."""
    if s.resume is None:
        writer = RunWriter(s.run_dir, s.run_id) if s.where.is_main else None
        return writer, 0
    path, state = load_latest_checkpoint(
        s.run_dir / CHECKPOINTS, map_location=s.device,
        accept=checkpoint_acceptor(trainer, s.run_id),
    )  # fmt: skip
    start = state["step"]
    s.log_window = state.get("log_window")
    if not s.where.is_main:
        return None, start
    writer = RunWriter(
        s.run_dir, s.run_id, elapsed_before=state.get("elapsed_s", 0.0),
        last_checkpoint=str(path), truncate_to=state["metrics_bytes"],
    )  # fmt: skip
    if change is not None:
        record_data_change(s.run_dir, s.saved, data, change, start)
    # also with --quiet: a restarted job says where it continues
    print(f"resuming {s.run_dir} from {path.name} (step {start})", file=sys.stderr)
    return writer, start


def _config_record(s: _Session, resolved, data: Prepared, choice, init_report) -> dict:
    """A new run's config.json."""
    record = {
        "run_id": s.run_id,
        "settings": s.given.as_dict(),
        "resolved": resolved.as_dict(),
        "precision": choice.as_dict(),
        "data": data.record(),
        "environment": environment(s.device, s.where.world),
    }
    if init_report is not None:
        record["init"] = dataclasses.asdict(init_report)
    return record


def _fit(
    s: _Session, trainer: Trainer, writer: RunWriter | None, start: int, draw: Draw | None
) -> dict[str, Any]:
    """The training loop, rank 0 logging and checkpointing; ``draw`` also after a stop."""
    if writer is None:  # the other processes train and evaluate their shards, write nothing
        return TrainingLoop(
            trainer, LoopHooks(progress=False), start, log_window=s.log_window
        ).run()
    live = s.redraw and LiveRedraw(
        s.redraw, s.run_dir, trainer.config.iterations, every_s=s.redraw_every_s
    )
    hooks = LoopHooks(
        log=tee(writer.log, s.board and s.board.write, live),
        checkpoint=lambda step, window: writer.checkpoint(trainer, step, window),
        progress=s.speak,
        print_logs=s.quiet,
    )
    try:
        return TrainingLoop(trainer, hooks, start, log_window=s.log_window).run()
    except BaseException:
        if draw is not None:  # the curves of a stopped run, as far as it got
            with contextlib.suppress(Exception):
                draw(s.run_dir)
        raise
    finally:
        writer.close()


def _summary(s: _Session, resolved: RunConfig, data: Prepared, final: dict, wall: float):
    """summary.json: the final errors and times."""
    return {
        "model": resolved.model,
        "data": data.name,
        "recipe": resolved.recipe,
        "iterations": resolved.iterations,
        "epochs": resolved.epochs,
        # train_seconds adds up every session of a resumed run; the last session's wall
        # time (data loading included) is kept apart so neither is mistaken for the other.
        "train_seconds": round(wall, 1),
        "resumed": s.resume is not None,
        "last_session_seconds": round(time.perf_counter() - s.started, 1),
        **{k: v for k, v in final.items() if k != "step"},
    }
