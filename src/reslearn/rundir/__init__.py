"""The run folder: what ``reslearn train`` leaves behind, owned here -- its file names, typed
readers, atomic writers, and how a command finds the weights in it.

::

    RUN/
      .reslearn-run        marker: reslearn made this folder; the run's id (marker.py)
      .reslearn-lock       held by the process training into it (lock.py)
      config.json          settings as given and resolved, data, precision, environment
      split.json           the held-out validation indices (--val-split)
      metrics.jsonl        one record per log line, evaluation and event
      checkpoints/         step-NNNNNNN.pt, the newest two
      model.safetensors    the final weights, with what it takes to use them
      evaluation.json      the final evaluation (per-class accuracy, confusion matrix)
      summary.json         the final errors and times; written last, it marks the run finished
      curves.png, confusion.png, report.html   drawn from the files above (reslearn.report)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from reslearn.atomic import atomic_write
from reslearn.jsonfile import read_json, read_json_record

CONFIG = "config.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
CURVES = "curves.png"
SUMMARY = "summary.json"
SPLIT = "split.json"
EVALUATION = "evaluation.json"
CONFUSION = "confusion.png"
REPORT = "report.html"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"  # --tensorboard's default folder for the event files

_CHECKPOINT = re.compile(r"^step-(\d+)\.pt$")
_FIX = "restore it from a copy, or train the run again"


def write_json(path: str | Path, record: Any, *, indent: int | None = 2) -> None:
    """``record`` as JSON in ``path``, written atomically (temporary file, fsync, rename)."""
    text = json.dumps(record, indent=indent) + "\n"
    atomic_write(path, lambda file: file.write(text.encode()))


def is_run(folder: str | Path) -> bool:
    """Whether ``folder`` holds a run's config.json (started, perhaps not finished)."""
    return (Path(folder) / CONFIG).is_file()


def is_finished(folder: str | Path) -> bool:
    """Whether the run in ``folder`` finished (its summary.json is written last)."""
    return (Path(folder) / SUMMARY).is_file()


def read_config(folder: str | Path, *, needs: tuple[str, ...] = ("settings",)) -> dict[str, Any]:
    """The run's config.json, which must hold the records ``needs``; a folder that is not a run
    raises FileNotFoundError, a damaged file a one-line error naming it."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a reslearn run folder (no {CONFIG})")
    return read_json_record(path, needs, fix=_FIX)


def read_summary(folder: str | Path) -> dict[str, Any] | None:
    """The finished run's summary.json, or None while it is unfinished."""
    path = Path(folder) / SUMMARY
    return read_json(path, fix=_FIX) if path.is_file() else None


def checkpoint_name(step: int) -> str:
    """``step-0001234.pt``: a checkpoint's file name, which sorts by step."""
    return f"step-{step:07d}.pt"


def checkpoint_step(path: str | Path) -> int | None:
    """The step a checkpoint file was saved at, from its name; None for another file."""
    match = _CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_checkpoints(folder: str | Path) -> list[Path]:
    """The checkpoints in a ``checkpoints/`` folder, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's newest checkpoint file (not checked for damage), or None."""
    found = list_checkpoints(Path(run_dir) / CHECKPOINTS)
    return found[-1] if found else None


def resolve_weights(target: str | Path) -> tuple[Path, Path | None, dict[str, Any]]:
    """(weights file, run folder or None, the run's settings) for a weights file or a run folder.

    The settings are those ``reslearn train`` saved under "settings" in config.json (data,
    image_size, cache_dir, ...); a config.json that holds them at the top level works too.
    """
    path = Path(target)
    if not path.is_dir():
        return path, None, {}
    weights = path / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(
            f"run directory '{path}' has no {WEIGHTS} (the run writes it when training ends)"
        )
    config: Any = {}
    if is_run(path):
        fix = f"restore it from a copy, or pass the run's {WEIGHTS} with --data instead"
        config = read_json(path / CONFIG, fix=fix)
    settings = config.get("settings", config) if isinstance(config, dict) else {}
    return weights, path, settings if isinstance(settings, dict) else {}
