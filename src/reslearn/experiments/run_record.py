"""What an experiment keeps of each finished run, so that a committed experiment folder can be
analysed without the runs' weights, and the checks before such a run is reused.

``RUN/measured.json`` is written when a run finishes (or, for a run finished before it existed,
when the run is first reused): the sha256 of the run's ``model.safetensors`` and what the
experiment's analysis measures of the trained network (Fig. 7's layer responses, for
``reproduce cifar``). A folder whose weights were not kept (the seeds above 0 of a committed
suite) is then still a finished run; one whose files were damaged is named and trained again,
never silently reused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reslearn.jsonfile import read_json
from reslearn.rundir import METRICS, SUMMARY, WEIGHTS, read_summary, write_json

MEASURED = "measured.json"

#: What an experiment measures of a finished run: called with the run folder (its weights are
#: there), returns the JSON-ready measurements its analysis reads.
Measure = Callable[[Path], dict[str, Any]]


def weights_sha256(path: Path) -> str:
    """The sha256 of a weights file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for piece in iter(lambda: file.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def read_measured(run_dir: Path) -> dict[str, Any] | None:
    """The run's measured.json, or None when it has none (a damaged one raises ValueError)."""
    path = run_dir / MEASURED
    return read_json(path, fix="delete it to measure the run again") if path.is_file() else None


def damage(run_dir: Path, *, iterations: int, measured_needed: bool) -> str | None:
    """Why the finished run in ``run_dir`` cannot be reused (a phrase), or None when it can: its
    summary must read, its metrics.jsonl must be whole up to step ``iterations``, and its weights
    must match the digest measured.json recorded, or, where the weights were not kept,
    measured.json must hold what the analysis reads (``measured_needed``) or at least the
    digest."""
    try:
        read_summary(run_dir)
    except ValueError:
        return f"its {SUMMARY} is damaged"
    problem = _metrics_damage(run_dir / METRICS, iterations)
    if problem:
        return problem
    try:
        measured = read_measured(run_dir)
    except ValueError:
        return f"its {MEASURED} is damaged"
    weights = run_dir / WEIGHTS
    if weights.is_file():
        recorded = (measured or {}).get("weights_sha256")
        if recorded is not None and weights_sha256(weights) != recorded:
            return f"its {WEIGHTS} does not match the sha256 in {MEASURED}"
        return None
    if measured is None or "weights_sha256" not in measured:
        return f"it has no {WEIGHTS} and no {MEASURED}"
    if measured_needed and "measurements" not in measured:
        return f"it has no {WEIGHTS} and its {MEASURED} holds no measurements"
    return None


def _metrics_damage(path: Path, iterations: int) -> str | None:
    """Why a finished run's metrics.jsonl is not whole, or None."""
    if not path.is_file():
        return f"it has no {METRICS}"
    text = path.read_text(errors="replace")
    if text and not text.endswith("\n"):
        return f"its {METRICS} is truncated (the last line is cut)"
    last = 0
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return f"its {METRICS} is damaged at line {number}"
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            last = max(last, record["step"])
    if last < iterations:
        return f"its {METRICS} ends at step {last:,} of {iterations:,} (truncated)"
    return None


def ensure_measured(run_dir: Path, measure: Measure | None) -> dict[str, Any] | None:
    """Record the weights' digest and the experiment's measurements in measured.json where they
    are missing (the weights must be in the folder for that); returns the file's record."""
    measured = read_measured(run_dir) or {}
    weights = run_dir / WEIGHTS
    wanted = {"weights_sha256"} | ({"measurements"} if measure is not None else set())
    if wanted <= measured.keys() or not weights.is_file():
        return measured or None
    measured.setdefault("weights_sha256", weights_sha256(weights))
    if measure is not None and "measurements" not in measured:
        measured["measurements"] = measure(run_dir)
    write_json(run_dir / MEASURED, measured)
    return measured
