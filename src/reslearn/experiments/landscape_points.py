"""A network's landscape points kept in the experiment folder as they are measured
(``OUT/landscape/NAME.jsonl``: a key line, then one line per point), so that a stopped
measurement goes on where it stopped and a rerun measures nothing twice.

The key names what the points depend on: the weights, the images and labels, the seed of the
directions. Points measured with another key are measured again, never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reslearn.analysis.landscape import Direction, Point, landscape
from reslearn.experiments.networks import measuring
from reslearn.train.metrics import MetricsLog

FORMAT = "reslearn-landscape/1"


def landscape_key(model: nn.Module, images: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """What a network's points depend on: digests of its parameters and buffers and of the
    images and labels, and the directions' seed."""
    weights = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    data = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    data.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return {
        "format": FORMAT,
        "weights_sha256": weights.hexdigest(),
        "images_sha256": data.hexdigest(),
        "images": len(labels),
        "seed": seed,
    }


class PointLog:
    """The points of one network measured so far (``done``: point -> (loss, accuracy)),
    appended to ``path`` one line each as they finish."""

    def __init__(self, path: Path, key: dict[str, Any]) -> None:
        self.path = path
        self.done: dict[Point, tuple[float, float | None]] = {}
        records, length = _whole_lines(path) if path.is_file() else ([], 0)
        if records and records[0].get("key") == key:
            for record in records[1:]:
                self.done[tuple(record["point"])] = (record["loss"], record["accuracy"])
            self._log = MetricsLog(path, truncate_to=length)  # a torn last line goes
            return
        if records:
            print(f"landscape: {path} holds points of other weights, images or seed; measuring "
                  "again", file=sys.stderr)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log = MetricsLog(path, truncate_to=0)
        self._log.write({"key": key})

    def add(self, point: Point, loss: float, accuracy: float | None) -> None:
        """Keep one measured point (a NaN loss as NaN)."""
        self._log.write({"point": list(point), "loss": loss, "accuracy": accuracy})
        self.done[point] = (loss, accuracy)

    def close(self) -> None:
        """Close the file."""
        self._log.close()


def _whole_lines(path: Path) -> tuple[list[dict], int]:
    """The records of ``path`` up to the first line that is not whole JSON, and their length
    in bytes (a process killed while writing leaves a torn last line)."""
    records, length = [], 0
    with open(path, "rb") as file:
        for line in file:
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not line.endswith(b"\n") or not isinstance(record, dict):
                break
            records.append(record)
            length += len(line)
    return records, length


def measure_points(
    model: nn.Module,
    directions: Sequence[Direction],
    points: Sequence[Point],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    log: PointLog,
    *,
    label: str,
) -> dict[Point, tuple[float, float | None]]:
    """(loss, accuracy) at every point, measuring those ``log`` lacks (a progress bar on a
    terminal) and keeping each as it finishes; a stop (Ctrl-C) says what was kept."""
    wanted = list(dict.fromkeys(points))
    missing = [p for p in wanted if p not in log.done]
    print(f"landscape: {label}: {len(missing):,} of {len(wanted):,} points to measure on "
          f"{len(labels):,} training images", file=sys.stderr)  # fmt: skip
    try:
        with measuring("landscape", label, total=len(missing), unit="point", desc=label,
                       kept=lambda: len(log.done), path=log.path) as bar:  # fmt: skip
            for point, loss, accuracy in landscape(model, directions, missing, inputs, labels):
                log.add(point, loss, accuracy)
                bar.update()
    finally:
        log.close()
    return {p: log.done[p] for p in wanted}
