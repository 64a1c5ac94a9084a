"""Rank 0's writes into a run folder while it trains: config.json and split.json at the start,
metrics.jsonl and checkpoints as it goes, and the finished run's weights, evaluation.json and
summary.json (last: it marks the run finished). Every file is written atomically; a failed
write (a full disk) stops the run with what to do instead of a traceback."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from reslearn.rundir import (
    CHECKPOINTS,
    CONFIG,
    EVALUATION,
    METRICS,
    SPLIT,
    SUMMARY,
    WEIGHTS,
    write_json,
)
from reslearn.rundir.marker import write_failure
from reslearn.train.checkpoint import save_checkpoint
from reslearn.train.loop import TrainingStopped
from reslearn.train.metrics import MetricsLog
from reslearn.train.prepare import Prepared
from reslearn.train.trainer import Trainer
from reslearn.weights import save_weights


class RunWriter:
    """The run folder's writer for one session of a run (a resumed run opens a new one).

    ``elapsed_before``: training seconds of earlier sessions; ``last_checkpoint``: the
    checkpoint this session resumed from (what a failed write falls back to);
    ``truncate_to``: metrics.jsonl's length at that checkpoint.
    """

    def __init__(
        self,
        run_dir: Path,
        run_id: str | None,
        *,
        elapsed_before: float = 0.0,
        last_checkpoint: str | None = None,
        truncate_to: int | None = None,
    ) -> None:
        self.run_dir, self.run_id = run_dir, run_id
        self.elapsed_before = elapsed_before
        self.last_checkpoint = last_checkpoint
        self._log = MetricsLog(run_dir / METRICS, truncate_to=truncate_to)
        self._started = time.perf_counter()

    def training_seconds(self) -> float:
        """Seconds trained over every session so far."""
        return self.elapsed_before + time.perf_counter() - self._started

    def start(self, record: dict[str, Any], data: Prepared, seed: int) -> None:
        """A new run's config.json (and split.json with a validation hold-out)."""
        write_json(self.run_dir / CONFIG, record)
        if data.val_indices is not None:
            split = {"seed": seed, "val_indices": data.val_indices.tolist()}
            write_json(self.run_dir / SPLIT, split, indent=None)

    def log(self, record: dict[str, Any]) -> None:
        """Append one record to metrics.jsonl."""
        try:
            self._log.write(record)
        except OSError as error:
            reason = write_failure(error, self.run_dir) or str(error)
            raise self._cannot_write(reason, METRICS, record["step"]) from None

    def checkpoint(self, trainer: Trainer, step: int, log_window: dict[str, Any]) -> str:
        """Everything to continue after ``step`` (the loop's ``log_window`` included); the
        newest two are kept."""
        state = trainer.state_dict()
        state.update(
            step=step,
            metrics_bytes=self._log.tell(),
            elapsed_s=self.training_seconds(),
            run_id=self.run_id,
            log_window=log_window,
        )
        folder = self.run_dir / CHECKPOINTS
        try:
            self.last_checkpoint = str(save_checkpoint(folder, state))
        except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError
            reason = write_failure(error, folder)
            if reason is None:
                raise
            raise self._cannot_write(reason, f"the checkpoint of step {step}", step) from None
        return self.last_checkpoint

    def close(self) -> None:
        """Close metrics.jsonl (a full disk is reported where it happened, not here again)."""
        with contextlib.suppress(OSError):
            self._log.close()

    def finish(self, trainer: Trainer, data: Prepared, final: dict, summary: dict) -> None:
        """The finished run's weights, evaluation.json, then summary.json."""
        config = trainer.config
        try:
            save_weights(
                self.run_dir / WEIGHTS, trainer.model, classes=data.classes,
                normalizer=data.normalizer, image_size=data.image_size,
                extra={"data": data.name, "recipe": config.recipe,
                       "iterations": str(config.iterations)},
            )  # fmt: skip
            self._write_evaluation(trainer, data.classes)
            write_json(self.run_dir / SUMMARY, summary)
        except (OSError, RuntimeError) as error:
            reason = write_failure(error, self.run_dir)
            if reason is None:
                raise
            what = "the finished run's files"
            raise self._cannot_write(reason, what, config.iterations) from None

    def _write_evaluation(self, trainer: Trainer, classes: list[str]) -> None:
        """The final evaluation's per-class accuracy and confusion matrix (test, else val)."""
        evaluations = trainer.last_evaluations
        split = "test" if "test" in evaluations else next(iter(evaluations), None)
        if split is None:
            return
        result = evaluations[split]
        record = {"split": split, "step": trainer.config.iterations, **result.as_dict(classes)}
        write_json(self.run_dir / EVALUATION, record, indent=None)

    def _cannot_write(self, reason: str, what: str, step: int) -> TrainingStopped:
        """The stop after a failed write: the run folder keeps its last checkpoint."""
        fix = "free some space" if reason.startswith(("no space", "disk quota")) else "fix that"
        last = self.last_checkpoint
        if last is not None:
            tail = (
                f"{what} could not be written; the run folder keeps its last checkpoint "
                f"({Path(last).name}): {fix}, then resume"
            )
        else:
            tail = (
                f"{what} could not be written and there is no checkpoint yet: {fix}, then "
                "start the run again with --overwrite"
            )
        return TrainingStopped(
            f"{reason}: {tail}", step=step, checkpoint=last, exit_code=1,
            resumable=last is not None,
        )  # fmt: skip
