"""What resuming a run checks and keeps: the run to continue after a torchrun restart, data that
changed since the run started, checkpoints that are not this run's, and the precision the run
chose when it started."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reslearn.rundir import CONFIG, SPLIT, is_run, latest_checkpoint, write_json
from reslearn.train.distributed import Distributed
from reslearn.train.fingerprint import data_change, legacy_sizes_change
from reslearn.train.prepare import Prepared
from reslearn.train.trainer import Trainer


def restarted_run(out: str | Path | None, where: Distributed) -> tuple[Path | None, bool]:
    """After a torchrun restart: (the run to resume, or None to start it again, overwrite)."""
    if where.restart == 0 or out is None or not is_run(out):
        return None, False
    if latest_checkpoint(out) is not None:
        return Path(out), False
    return None, True  # it failed before its first checkpoint: start it again


def data_changed(run_dir: Path, record: dict, data: Prepared, allow: bool) -> str | None:
    """How the data differs from what the run started on (None: not at all); refuses other
    classes always and other images unless ``allow``."""
    saved = record.get("data", {})
    change = data_change(saved, data.fingerprint) if data.fingerprint else None
    if change is None and "fingerprint" not in saved:  # a run saved before fingerprints
        sizes = legacy_sizes_change(saved, data.train_images, data.held_out_sizes)
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


def record_data_change(run_dir: Path, record: dict, data: Prepared, what: str, step: int) -> None:
    """config.json (and split.json) after ``--allow-data-change``: the data now trained on,
    and when and how it changed."""
    before = record.get("data", {})
    record["data"] = {
        **before,
        "train_images": data.train_images,
        "eval_images": dict(data.held_out_sizes),
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


def checkpoint_acceptor(
    trainer: Trainer, run_id: str | None
) -> Callable[[Path, dict[str, Any]], None]:
    """A checkpoint is resumed only when it is this run's and fits its network; the acceptor
    loads it into ``trainer`` (see checkpoint.load_latest_checkpoint's ``accept``)."""

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


def recorded_precision(record: dict[str, Any]) -> dict[str, Any]:
    """The precision and layout a run chose when it started (config.json's resolved settings)."""
    resolved = record["resolved"]
    return {"precision": resolved["precision"], "channels_last": resolved["channels_last"]}
