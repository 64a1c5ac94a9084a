"""A training run on disk: load the data, build the network, train, and leave behind a run
folder (config.json, metrics.jsonl, checkpoints/, model.safetensors, curves.png, summary.json)
that can be resumed exactly."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import reslearn
from reslearn.data import load_dataset
from reslearn.data.device_data import DeviceData, to_device_uint8, validation_split
from reslearn.data.normalize import Normalizer
from reslearn.data.sources import default_workers, list_image_folder
from reslearn.data.stream import (
    StreamData,
    StreamEval,
    TrainViewSettings,
    fit_stream_normalizer,
)
from reslearn.models import create_model, model_info
from reslearn.report.confusion import plot_confusion
from reslearn.report.curves import plot_curves
from reslearn.train.checkpoint import load_latest_checkpoint, save_checkpoint
from reslearn.train.config import TrainConfig
from reslearn.train.distributed import Distributed
from reslearn.train.distributed import setup as setup_distributed
from reslearn.train.fingerprint import (
    data_change,
    dataset_fingerprint,
    legacy_sizes_change,
    listing_fingerprint,
)
from reslearn.train.init import init_model_options, load_initial_weights
from reslearn.train.lock import FolderInUse, FolderLock
from reslearn.train.metrics import MetricsLog, read_metrics
from reslearn.train.recipes import get_recipe
from reslearn.train.runfolder import (
    MARKER,
    check_run_dir,
    clear_run_dir,
    contents,
    new_run_id,
    write_failure,
    write_json,
    write_marker,
)
from reslearn.precision import input_dtype
from reslearn.train.speed import choose_run_precision
from reslearn.train.trainer import (
    EvalSet,
    LoopHooks,
    Trainer,
    TrainingStopped,
    check_batch_split,
)
from reslearn.weights import save_weights

CONFIG, METRICS, WEIGHTS, CURVES, SUMMARY, SPLIT = (
    "config.json",
    "metrics.jsonl",
    "model.safetensors",
    "curves.png",
    "summary.json",
    "split.json",
)
EVALUATION, CONFUSION, REPORT = "evaluation.json", "confusion.png", "report.html"


@dataclass
class RunResult:
    """Where a finished run is and how it ended."""

    run_dir: Path
    config: TrainConfig
    final: dict[str, Any]
    wall_time_s: float


def default_run_dir(config: TrainConfig, data_name: str) -> Path:
    """``runs/<model>-<data>-<recipe>-<time>``: a new folder for every run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model}-{data_name}-{config.recipe}-{stamp}"


def _git(*args: str) -> str | None:
    """A git command's output in reslearn's source folder (None outside a checkout)."""
    source = Path(reslearn.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _git_revision() -> tuple[str | None, bool | None]:
    """(the commit reslearn runs from, whether its tracked files differ from it); (None, None)
    when reslearn is not running from a git checkout."""
    revision = (_git("rev-parse", "HEAD") or "").strip() or None
    if revision is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return revision, None if status is None else bool(status.strip())


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    revision, dirty = _git_revision()
    return {
        "reslearn": reslearn.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_revision": revision,
        "git_dirty": dirty,
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "command": sys.argv,
    }


@dataclass
class Prepared:
    """A run's data, ready to train on: what the trainer needs and what config.json records."""

    name: str
    source: str
    classes: list[str]
    channels: int
    image_size: tuple[int, int]
    skipped: list[str]
    resolved: TrainConfig
    train: DeviceData | StreamData
    eval_sets: dict[str, EvalSet | StreamEval]
    normalizer: Normalizer
    val_indices: np.ndarray | None
    fingerprint: dict[str, Any] | None = None  # what a resumed run compares (see fingerprint)


def _prepare(config: TrainConfig, device: torch.device, progress: bool) -> Prepared:
    """Data, split, normaliser and eval sets for ``config`` (resolved on the data's size)."""
    loader = config.loader or get_recipe(config.recipe).loader
    if loader == "stream":
        return _prepare_stream(config, device)
    info = model_info(config.model)
    dataset = load_dataset(
        config.data,
        image_size=config.image_size,
        fallback_size=info.input_size,
        cache_dir=config.cache_dir,
        skip_bad_images=config.skip_bad_images,
        workers=config.workers,
        progress=progress,
    )
    images, labels = dataset.train.images, dataset.train.labels
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    val_indices = None
    if config.val_split:
        keep, val_indices = validation_split(len(labels), config.val_split, config.seed)
        splits["val"] = (images[val_indices], labels[val_indices])
        images, labels = images[keep], labels[keep]
    if dataset.test is not None:
        splits["test"] = (dataset.test.images, dataset.test.labels)
    _need_held_out(config, splits)
    resolved = config.resolve(len(labels))
    dtype = input_dtype(resolved.precision)  # fp32 while "auto": cast once it is chosen
    train_u8 = to_device_uint8(images, device)
    normalizer = Normalizer.fit(train_u8, resolved.normalization)
    train = DeviceData(
        train_u8,
        torch.from_numpy(labels),
        normalizer,
        dtype=dtype,
        pad=resolved.pad,
        flip=resolved.flip,
    )
    eval_sets: dict[str, EvalSet | StreamEval] = {}
    for name, (x, y) in splits.items():
        held = DeviceData(
            to_device_uint8(x, device),
            torch.from_numpy(y),
            normalizer,
            dtype=dtype,
            pad=0,
            flip=False,
        )
        eval_sets[name] = EvalSet(held.inputs(), held.labels)
    return Prepared(
        dataset.name,
        dataset.source,
        dataset.train.classes,
        dataset.train.images.shape[-1],
        tuple(dataset.train.images.shape[1:3]),
        dataset.skipped,
        resolved,
        train,
        eval_sets,
        normalizer,
        val_indices,
        fingerprint=dataset_fingerprint(dataset),
    )


def _decode_place(data: Prepared) -> str | None:
    """Where a streamed run decodes its JPEGs ("workers" or the device), None in memory."""
    if not isinstance(data.train, StreamData):
        return None
    return str(data.train.device) if data.train.decode_on_device else "workers"


def _need_held_out(config: TrainConfig, splits: dict) -> None:
    if not splits:
        raise ValueError(
            f"{config.data} has no test split; hold out validation images with --val-split N"
        )


def _prepare_stream(config: TrainConfig, device: torch.device) -> Prepared:
    """An image folder listed, not decoded: training views come from DataLoader workers, the
    held-out splits are evaluated on the centre view, the per-pixel mean is that of the centre
    views of 1,000 training images."""
    listing = list_image_folder(config.data)
    files, labels = listing.splits["train"]
    splits: dict[str, tuple[list[str], np.ndarray]] = {}
    val_indices = None
    if config.val_split:
        keep, val_indices = validation_split(len(labels), config.val_split, config.seed)
        splits["val"] = ([files[i] for i in val_indices], labels[val_indices])
        files, labels = [files[i] for i in keep], labels[keep]
    if "test" in listing.splits:
        splits["test"] = listing.splits["test"]
    _need_held_out(config, splits)
    resolved = config.resolve(len(labels))
    resolved.loader = "stream"
    workers = resolved.workers
    if workers is None:  # the node's cores, shared among torchrun's processes on it
        workers = default_workers(share=int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    crop = resolved.crop_size
    on_device = resolved.decode == "device" or (resolved.decode == "auto" and device.type == "cuda")
    normalizer = fit_stream_normalizer(
        files, resolved.normalization, crop=crop, seed=resolved.seed, workers=workers
    )
    train = StreamData(
        files,
        labels,
        normalizer,
        device=device,
        dtype=input_dtype(resolved.precision),
        settings=TrainViewSettings(
            tuple(resolved.scale_range), resolved.crop_size, resolved.lighting
        ),
        workers=workers,
        skip_bad=resolved.skip_bad_images,
        stop=resolved.iterations,
        decode_on_device=on_device,
    )
    eval_sets: dict[str, EvalSet | StreamEval] = {
        name: StreamEval(
            split_files,
            split_labels,
            normalizer,
            crop=crop,
            workers=workers,
            batch_size=min(resolved.eval_batch_size, 256),
            skip_bad=resolved.skip_bad_images,
        )
        for name, (split_files, split_labels) in splits.items()
    }
    return Prepared(
        listing.name, listing.root, listing.classes, 3, (crop, crop), [], resolved, train,
        eval_sets, normalizer, val_indices, fingerprint=listing_fingerprint(listing),
    )  # fmt: skip


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    allow_data_change: bool = False,
) -> RunResult:
    """Train ``config`` into a run folder (new, overwritten, or resumed from its checkpoint).

    Under torchrun every process calls this; rank 0 alone writes the folder. After torchrun
    restarted the job (``--max-restarts``) the run in ``out`` resumes from its last checkpoint.
    The folder is locked for the run's life (rank 0 holds the lock); another process training
    into it is refused. A resumed run refuses data whose classes changed, and data whose images
    changed unless ``allow_data_change``.
    """
    started = time.perf_counter()
    if resume is not None:
        if not (Path(resume) / CONFIG).is_file():
            raise FileNotFoundError(f"{resume} is not a reslearn run folder (no {CONFIG})")
        device_name = TrainConfig.load(Path(resume) / CONFIG).device
    else:
        device_name = config.device
    where, device = setup_distributed(device_name)
    held: list[FolderLock] = []
    failed = True
    try:
        result = _train(
            config, out, resume, overwrite, quiet, where, device, started, held, allow_data_change
        )
        failed = False
        return result
    finally:
        for lock in held:
            _release(lock, failed)
        where.close()


def _lock(folder: Path, where: Distributed, device: torch.device, held: list) -> None:
    """Rank 0 locks ``folder`` for the run's life; every process learns whether it could."""
    refused = None
    if where.is_main:
        try:
            held.append(FolderLock(folder))
        except FolderInUse as error:
            refused = error
    (anyone,) = where.any(refused is not None, device=device)
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


def _resumed_data_change(run_dir: Path, record: dict, data: Prepared, allow: bool) -> str | None:
    """How the data differs from what the run started on (None: not at all); refuses other
    classes always and other images unless ``allow``."""
    saved = record.get("data", {})
    change = data_change(saved, data.fingerprint) if data.fingerprint else None
    if change is None and "fingerprint" not in saved:  # a run saved before fingerprints
        eval_images = {k: len(v.labels) for k, v in data.eval_sets.items()}
        sizes = legacy_sizes_change(saved, len(data.train), eval_images)
        change = ("images", sizes) if sizes else None
    if change is None:
        return None
    kind, what = change
    if kind == "classes":
        raise ValueError(
            f"the classes of {data.source} changed since {run_dir} started ({what}); a run "
            "cannot continue on other classes: train a new one"
        )
    if not allow:
        raise ValueError(
            f"the data in {data.source} changed since {run_dir} started ({what}), so resuming "
            "would not continue the same run; restore it, or pass --allow-data-change to "
            "continue on the new images"
        )
    return what


def _record_data_change(run_dir, record, data: Prepared, what: str, step: int) -> None:
    """config.json (and split.json) after ``--allow-data-change``: the data now trained on,
    and when and how it changed."""
    before = record.get("data", {})
    record["data"] = {
        **before,
        "train_images": len(data.train),
        "eval_images": {k: len(v.labels) for k, v in data.eval_sets.items()},
        "skipped_images": data.skipped,
        "fingerprint": data.fingerprint,
    }
    change = {"step": step, "change": what, "before": before.get("fingerprint")}
    record["data_changes"] = [*record.get("data_changes", []), change]
    write_json(run_dir / CONFIG, record)
    if data.val_indices is not None:
        split = {"seed": record["resolved"]["seed"], "val_indices": data.val_indices.tolist()}
        write_json(run_dir / SPLIT, split, indent=None)
    print(
        f"warning: continuing {run_dir} at step {step} on changed data ({what}); "
        "config.json records the change",
        file=sys.stderr,
    )


def _fits(trainer: Trainer, run_id: str | None):
    """A checkpoint is resumed only when it is this run's and fits its network; loads it."""

    def accept(path: Path, state: dict[str, Any]) -> None:
        if run_id is not None and state.get("run_id") != run_id:
            raise ValueError(
                f"checkpoint {path} is not this run's (its run id is "
                f"{state.get('run_id') or 'missing'}, the run's {run_id})"
            )
        try:
            trainer.load_state_dict(state)
            state["step"], state["metrics_bytes"]  # noqa: B018  (present, or not a checkpoint)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            raise ValueError(f"checkpoint {path} does not fit this run ({reason})") from None

    return accept


def _cannot_write(reason: str, what: str, step: int, last: str | None) -> TrainingStopped:
    """The stop after a failed write (a full disk): the run folder keeps its last checkpoint."""
    fix = "free some space" if reason.startswith(("no space", "disk quota")) else "fix that"
    if last is not None:
        tail = (
            f"{what} could not be written; the run folder keeps its last checkpoint "
            f"({Path(last).name}): {fix}, then resume"
        )
    else:
        tail = (
            f"{what} could not be written and there is no checkpoint yet: {fix}, then start "
            "the run again with --overwrite"
        )
    return TrainingStopped(
        f"{reason}: {tail}", step=step, checkpoint=last, exit_code=1, resumable=last is not None
    )


def _restarted_run(out: str | Path | None, where: Distributed) -> tuple[Path | None, bool]:
    """After a torchrun restart: (the run to resume, or None to start it again, overwrite)."""
    if where.restart == 0 or out is None or not (Path(out) / CONFIG).is_file():
        return None, False
    if any((Path(out) / "checkpoints").glob("*.pt")):
        return Path(out), False
    return None, True  # it failed before its first checkpoint: start it again


def _check_processes(config, out, resume, where: Distributed, device: torch.device) -> None:
    """Settings that depend on the processes, refused before any data is read."""
    if where.enabled and out is None and resume is None:
        raise ValueError("give --out with several processes, so that they share one folder")
    if config.sync_bn and (not where.enabled or device.type != "cuda"):
        raise ValueError(
            "--sync-bn needs several GPU processes (torchrun with NCCL); on CPUs each "
            "process normalises with its own batch statistics"
        )
    batch_size = config.batch_size or get_recipe(config.recipe).batch_size
    check_batch_split(batch_size, where.world, config.accumulate)


def _train(
    config, out, resume, overwrite, quiet, where, device, started, held, allow_data_change
) -> RunResult:
    if resume is None:
        resume, again = _restarted_run(out, where)
        overwrite = overwrite or again
    speak = not quiet and where.is_main
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / CONFIG).is_file():
            raise FileNotFoundError(f"{run_dir} is not a reslearn run folder (no {CONFIG})")
        config = TrainConfig.load(run_dir / CONFIG)
    else:
        config.validate()
        if out is not None:
            check_run_dir(Path(out), overwrite=overwrite)
    _check_processes(config, out, resume, where, device)
    where.barrier()  # every process has checked the folder before rank 0 writes into it
    if resume is not None or out is not None:  # locked before the data is read
        _lock(Path(resume if resume is not None else out), where, device, held)
    with where.main_first():  # rank 0 fills the decode cache, the others read it
        data = _prepare(config, device, progress=speak)
    resolved = data.resolved
    if resume is None:
        run_dir = Path(out) if out is not None else default_run_dir(config, data.name)
        if out is None:
            check_run_dir(run_dir, overwrite=overwrite)
            _lock(run_dir, where, device, held)
        run_id = _new_run(run_dir, overwrite) if where.is_main else None
    else:
        saved_record = json.loads((run_dir / CONFIG).read_text())
        run_id = saved_record.get("run_id")  # None for a run made before run ids
        data_changed = _resumed_data_change(run_dir, saved_record, data, allow_data_change)
    classes = data.classes
    if resume is not None:  # the options the run was built with (--init may have added some)
        saved = json.loads((run_dir / CONFIG).read_text())["resolved"]
        resolved.model_options = saved["model_options"]
    elif resolved.init:
        resolved.model_options = init_model_options(
            resolved.init, resolved.model, resolved.model_options
        )
    torch.manual_seed(resolved.seed)
    model = create_model(
        resolved.model,
        num_classes=len(classes),
        in_channels=data.channels,
        **resolved.model_options,
    )
    init_report = None
    if resolved.init and resume is None:
        init_report = load_initial_weights(resolved.init, model, resolved.model)
        if speak:
            print(
                f"initialised from {resolved.init}: {init_report.tensors} tensors, "
                f"head {init_report.head}",
                file=sys.stderr,
            )
    if resolved.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    resolved, precision_choice = choose_run_precision(
        resolved, model, data.train, data.eval_sets, device=device,
        input_shape=(data.channels, *data.image_size), where=where,
        recorded=_recorded_precision(run_dir) if resume is not None else None,
    )  # fmt: skip
    trainer = Trainer(resolved, model, data.train, data.eval_sets, where=where)

    start, truncate_to, elapsed_before = 0, None, 0.0
    if resume is not None:
        path, state = load_latest_checkpoint(
            run_dir / "checkpoints", map_location=device, accept=_fits(trainer, run_id)
        )  # and loaded into the trainer
        trainer.resume_log_window = state.get("log_window")
        start, truncate_to = state["step"], state["metrics_bytes"]
        elapsed_before = state.get("elapsed_s", 0.0)
        if data_changed is not None and where.is_main:
            _record_data_change(run_dir, saved_record, data, data_changed, start)
        if where.is_main:  # also with --quiet: a restarted job says where it continues
            print(f"resuming {run_dir} from {path.name} (step {start})", file=sys.stderr)
    elif where.is_main:
        record = {
            "run_id": run_id,
            "settings": config.as_dict(),
            "resolved": resolved.as_dict(),
            "precision": precision_choice.as_dict(),
            "data": {
                "name": data.name,
                "source": data.source,
                "classes": classes,
                "train_images": len(data.train),
                "eval_images": {k: len(v.labels) for k, v in data.eval_sets.items()},
                "image_size": list(data.image_size),
                "channels": data.channels,
                "skipped_images": data.skipped,
                "loader": resolved.loader,
                "decode": _decode_place(data),
                "fingerprint": data.fingerprint,
            },
            "environment": {**_environment(device), "processes": where.world},
        }
        if init_report is not None:
            record["init"] = dataclasses.asdict(init_report)
        write_json(run_dir / CONFIG, record)
        if data.val_indices is not None:
            split = {"seed": config.seed, "val_indices": data.val_indices.tolist()}
            write_json(run_dir / SPLIT, split, indent=None)

    log = MetricsLog(run_dir / METRICS, truncate_to=truncate_to) if where.is_main else None
    loop_started = time.perf_counter()
    last_checkpoint = [str(path) if resume is not None else None]

    def checkpoint(step: int) -> str:
        state = trainer.state_dict()
        state.update(
            step=step,
            metrics_bytes=log.tell(),
            elapsed_s=elapsed_before + time.perf_counter() - loop_started,
            run_id=run_id,
            log_window=trainer.log_window or {"steps": 0},
        )
        folder = run_dir / "checkpoints"
        try:
            last_checkpoint[0] = str(save_checkpoint(folder, state))
        except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError
            reason = write_failure(error, folder)
            if reason is None:
                raise
            what = f"the checkpoint of step {step}"
            raise _cannot_write(reason, what, step, last_checkpoint[0]) from None
        return last_checkpoint[0]

    def write_log(record: dict[str, Any]) -> None:
        try:
            log.write(record)
        except OSError as error:
            reason = write_failure(error, run_dir) or str(error)
            raise _cannot_write(reason, METRICS, record["step"], last_checkpoint[0]) from None

    if where.is_main:
        hooks = LoopHooks(log=write_log, checkpoint=checkpoint, progress=speak, print_logs=quiet)
    else:  # the other processes train and evaluate their shards, and write nothing
        hooks = LoopHooks(progress=False)
    try:
        final = trainer.fit(start, hooks)
    finally:
        if log is not None:  # a full disk is reported where it happened, not here again
            with contextlib.suppress(OSError):
                log.close()
            with contextlib.suppress(OSError):
                draw_curves(run_dir, resolved)
        if isinstance(data.train, StreamData):
            data.train.close()
    wall = elapsed_before + time.perf_counter() - loop_started
    if where.is_main:
        try:
            _finish(run_dir, trainer, data, resolved, final, wall, resume is not None, started)
        except (OSError, RuntimeError) as error:
            reason = write_failure(error, run_dir)
            if reason is None:
                raise
            what = "the finished run's files"
            raise _cannot_write(reason, what, resolved.iterations, last_checkpoint[0]) from None
    where.barrier()
    return RunResult(run_dir, resolved, final, wall)


def _recorded_precision(run_dir: Path) -> dict[str, Any]:
    """The precision and layout a run chose when it started (config.json's resolved settings)."""
    resolved = json.loads((run_dir / CONFIG).read_text())["resolved"]
    return {"precision": resolved["precision"], "channels_last": resolved["channels_last"]}


def _finish(run_dir, trainer, data, resolved, final, wall, resumed, started) -> None:
    """The finished run's files, each written atomically: weights, evaluation, then
    summary.json, which marks the run finished, then the report (a page drawn from them)."""
    save_weights(
        run_dir / WEIGHTS,
        trainer.model,
        classes=data.classes,
        normalizer=data.normalizer,
        image_size=data.image_size,
        extra={
            "data": data.name,
            "recipe": resolved.recipe,
            "iterations": str(resolved.iterations),
        },
    )
    summary = {
        "model": resolved.model,
        "data": data.name,
        "recipe": resolved.recipe,
        "iterations": resolved.iterations,
        "epochs": resolved.epochs,
        # train_seconds adds up every session of a resumed run; the last session's wall
        # time (data loading included) is kept apart so neither is mistaken for the other.
        "train_seconds": round(wall, 1),
        "resumed": resumed,
        "last_session_seconds": round(time.perf_counter() - started, 1),
        **{k: v for k, v in final.items() if k != "step"},
    }
    _write_evaluation(run_dir, trainer, data.classes)
    write_json(run_dir / SUMMARY, summary)
    from reslearn.report.run_report import write_run_report  # it reads these file names

    write_run_report(run_dir)


def _write_evaluation(run_dir: Path, trainer: Trainer, classes: list[str]) -> None:
    """The final evaluation's per-class accuracy and confusion matrix (test split, else val)."""
    evaluations = trainer.last_evaluations
    split = "test" if "test" in evaluations else next(iter(evaluations), None)
    if split is None:
        return
    result = evaluations[split]
    record = {"split": split, "step": trainer.config.iterations, **result.as_dict(classes)}
    write_json(run_dir / EVALUATION, record, indent=None)
    plot_confusion(
        result.confusion,
        classes,
        run_dir / CONFUSION,
        title=f"{trainer.config.model}, {split} split: {100 * result.top1_error:.2f}% error",
    )


def draw_curves(run_dir: Path, config: TrainConfig) -> None:
    """Redraw curves.png from metrics.jsonl (also after an interrupted run)."""
    path = run_dir / METRICS
    records = read_metrics(path) if path.exists() else []
    if records:
        drops = config.milestones or ()
        if config.schedule == "plateau":  # the drops happened where the error stopped falling
            drops = [r["step"] for r in records if r.get("event") == "lr dropped on plateau"]
        plot_curves(
            [(config.model, records)],
            run_dir / CURVES,
            title=f"{config.model}, {config.recipe} recipe",
            milestones=drops,
        )
