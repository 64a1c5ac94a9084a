"""metrics.jsonl: one JSON object per line, appended as training goes, truncatable on resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSON-lines log whose byte length is recorded in every checkpoint.

    Resuming truncates the file back to the length it had at the checkpoint, and the checkpoint
    carries the logging window's sums (``TrainingLoop`` hands its window to each checkpoint),
    so the log of a resumed run equals that of an uninterrupted one: no duplicated or orphaned
    lines, and the first record after the resume averages the same steps (only images/s
    differs: time is measured anew).
    """

    def __init__(self, path: str | Path, *, truncate_to: int | None = None) -> None:
        self.path = Path(path)
        if truncate_to is not None and self.path.exists():
            with open(self.path, "r+b") as file:
                file.truncate(truncate_to)
        self._file = open(self.path, "a")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS."""
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        self._file.flush()

    def tell(self) -> int:
        """The current length of the file in bytes."""
        self._file.flush()
        return os.path.getsize(self.path)

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file (a torn last line is ignored)."""
    records = []
    with open(path) as file:
        for line in file:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records
