"""The training loop: steps from ``start`` to the end, punctuated by named events -- a log line,
an evaluation (and the plateau schedule's verdict), a checkpoint, and a stop (a signal, a
non-finite loss or weights, an unreadable image) -- each a method of ``TrainingLoop``.

With several processes the loop's decisions are collective: every process agrees on stopping
and on non-finite values at the same step, so none waits forever in an all-reduce.
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from reslearn.data.decode import BadImageError
from reslearn.train.distributed import Distributed

if TYPE_CHECKING:  # the trainer calls the loop; the loop only drives the trainer it is given
    from reslearn.train.trainer import Trainer


class TrainingStopped(Exception):
    """A run ended early; ``checkpoint`` is the file to resume from (None if there is none);
    ``resumable``: whether resuming from it is the way on (a stop by a signal, a full disk),
    by default whenever ``exit_code`` is not 1 (a failure to fix first)."""

    def __init__(
        self,
        message: str,
        *,
        step: int,
        checkpoint: str | None,
        exit_code: int,
        resumable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.step, self.checkpoint, self.exit_code = step, checkpoint, exit_code
        self.resumable = exit_code != 1 if resumable is None else resumable

    def __reduce__(self) -> tuple:
        # keyword-only fields: pickled (a launcher's job sends it to the experiment) by keyword
        rebuild = functools.partial(
            TrainingStopped, step=self.step, checkpoint=self.checkpoint,
            exit_code=self.exit_code, resumable=self.resumable,
        )  # fmt: skip
        return rebuild, (str(self),)


@dataclass
class LoopHooks:
    """What the loop reports to and asks of its caller (the run: logs, checkpoints), and the
    caller's (or a signal's) request to stop after the current step."""

    log: Callable[[dict[str, Any]], None] = lambda record: None
    #: ``checkpoint(step, log_window)`` saves everything to continue after ``step``, the
    #: loop's logging window included (see ``LogWindow.state``); returns the file's path.
    checkpoint: Callable[[int, dict[str, Any]], str | None] = lambda step, window: None
    progress: bool = True
    print_logs: bool = False
    stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    requests: list[int] = field(default_factory=list)  # signal numbers, oldest first

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop after the current step, with a checkpoint (as SIGTERM would)."""
        self.requests.append(signum)

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for."""
        return bool(self.requests)

    def emit(self, record: dict[str, Any], line: str) -> None:
        """Log ``record``; in log-line mode also print ``line``."""
        self.log(record)
        if self.print_logs:
            print(line, flush=True)


class LogWindow:
    """The training loss and wrong predictions summed since the last log line, the steps they
    cover, and the seconds spent training them (evaluations and checkpoints excluded)."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.wrong = torch.zeros((), dtype=torch.int64, device=device)
        self.steps, self.started, self.paused = 0, time.perf_counter(), 0.0

    def add(self, loss: torch.Tensor, wrong: torch.Tensor) -> None:
        """One more step's mean loss and wrong count (no host sync)."""
        self.loss += loss
        self.wrong += wrong
        self.steps += 1

    def seconds(self, now: float | None = None) -> float:
        """Training time in the window so far."""
        return (time.perf_counter() if now is None else now) - self.started - self.paused

    def reset(self) -> None:
        """Start a new window (after a log line)."""
        self.loss.zero_()
        self.wrong.zero_()
        self.steps, self.started, self.paused = 0, time.perf_counter(), 0.0

    def state(self, where: Distributed, now: float, gather: bool) -> dict[str, Any]:
        """The window for a checkpoint: every process's sums, one row each (with ``gather``,
        a collective; else this process's row alone)."""
        if self.steps == 0:
            return {"steps": 0}
        gather = gather and where.enabled
        rows = torch.zeros((where.world if gather else 1, 2), dtype=torch.float64)
        rows = rows.to(self.loss.device)
        rows[where.rank if gather else 0] = torch.stack([self.loss.double(), self.wrong.double()])
        rows = where.sum(rows).cpu() if gather else rows.cpu()  # float64 holds them exactly
        return {"steps": self.steps, "seconds": self.seconds(now), "loss": rows[:, 0],
                "wrong": rows[:, 1]}  # fmt: skip

    def restore(self, saved: dict[str, Any] | None, where: Distributed) -> None:
        """Continue a checkpoint's window: its sums (this process's row, or with another number
        of processes rank 0 carries them all), steps and seconds."""
        if not saved or not saved.get("steps"):
            return
        self.steps = int(saved["steps"])
        self.started -= float(saved["seconds"])
        rows_loss, rows_wrong = saved["loss"], saved["wrong"]
        if len(rows_loss) == where.world:  # the same processes: each takes its own row
            loss, wrong = rows_loss[where.rank], rows_wrong[where.rank]
        elif where.is_main:
            scale = where.world / len(rows_loss)  # the loss is averaged over processes
            loss, wrong = rows_loss.sum() * scale, rows_wrong.sum()
        else:
            return
        self.loss.fill_(loss.item())
        self.wrong.fill_(int(round(wrong.item())))


class TrainingLoop:
    """The loop, the front door of training: from step ``start`` to ``config.iterations``.

    The loop owns the logging window: ``log_window`` is the one a checkpoint saved (a resumed
    run continues it, so its first record averages the same steps as an uninterrupted run's),
    and each checkpoint is handed the window of its moment. Raises TrainingStopped on SIGINT/
    SIGTERM or ``hooks.request_stop()`` (after a checkpoint) and on a non-finite loss or weights
    (without writing the bad weights)."""

    def __init__(
        self,
        trainer: Trainer,
        hooks: LoopHooks,
        start: int,
        *,
        log_window: dict[str, Any] | None = None,
    ) -> None:
        self.trainer, self.hooks, self.start = trainer, hooks, start
        self.resumed_window = log_window
        c = trainer.config
        self.total = c.iterations
        self.where = trainer.where
        # On the CPU a finiteness check per step is free; on a GPU it would stall the queue,
        # so there it happens at each log and checkpoint, naming the window it happened in.
        # With several processes every step agrees on stopping (a signal may reach them at
        # different steps), so the check happens at every step there.
        cpu = trainer.device.type == "cpu"
        self.check_every = 1 if cpu or self.where.enabled else c.log_every
        self.window = LogWindow(trainer.device)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=trainer.device)
        self.checked_upto, self.last_saved = start, None
        self.last_eval: dict[str, Any] = {}
        self.postfix: dict[str, str] = {}
        self.bar: Any = None

    def run(self) -> dict[str, Any]:
        """Train to the end; returns the last evaluation record."""
        t = self.trainer
        if self.start >= self.total:  # a finished run resumed again: report the end
            self.stop_if_weights_nonfinite(self.total, agree=True)
            return {"step": self.total, "epoch": self._epoch(self.total), **t.evaluate()}
        self.window.restore(self.resumed_window, self.where)
        self.bar = tqdm(
            total=self.total, initial=self.start, unit="it", desc=t.config.model,
            disable=not self.hooks.progress, dynamic_ncols=True, file=sys.stderr,
        )  # fmt: skip
        with self.bar, catch_signals(self.hooks):
            for step in range(self.start, self.total):
                self.step(step)
        return self.last_eval

    def step(self, step: int) -> None:
        """Train ``step``, then whatever events fall after it."""
        c, done = self.trainer.config, step + 1
        warming_up = self.trainer.schedule.warmup_active
        loss, wrong = self.train(step)
        self.announce(done, warming_up)
        self.window.add(loss, wrong)
        self.nonfinite |= ~torch.isfinite(loss)
        self.bar.update(1)
        log = done % c.log_every == 0 or done == self.total
        evaluate = (done % c.eval_every == 0 or done == self.total) and bool(self.trainer.eval_sets)
        checkpoint = done % c.checkpoint_every == 0 or done == self.total
        stop = self.agree(done, step, force=log or evaluate or checkpoint)
        if log:
            self.log(done, step)
        paused_at = time.perf_counter()
        # Weights are checked before they are evaluated or saved, by every process alike
        # (a signal that came after the agreement above: by this process alone).
        saving = checkpoint or stop
        if evaluate or saving or self.hooks.stop_requested:
            self.stop_if_weights_nonfinite(done, agree=evaluate or saving)
        if evaluate:
            self.evaluate(done)
        if checkpoint or self.hooks.stop_requested:
            self.checkpoint(done, paused_at, gather=saving)
        # evaluation and checkpoint time does not count against training speed
        self.window.paused += time.perf_counter() - paused_at
        if self.hooks.stop_requested:
            self.stopped(done)

    # -- events ---------------------------------------------------------------------------------

    def train(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; an unreadable image stops the run before anything of it applies."""
        try:
            return self.trainer.train_step(step)
        except BadImageError as error:
            saved = self.last_saved
            if step > self.start:  # this process alone may have failed: no collective
                window = self.window.state(self.where, time.perf_counter(), gather=False)
                saved = self.hooks.checkpoint(step, window)
            raise TrainingStopped(
                f"{error}; training stopped before step {step + 1}",
                step=step, checkpoint=saved, exit_code=1,
            ) from None  # fmt: skip

    def announce(self, done: int, warming_up: bool) -> None:
        """Events of the step itself: an fp16 step skipped, the low-lr warm-up's end."""
        t, total = self.trainer, self.total
        if t.last_step_skipped:
            scale = t.scaler.get_scale()
            self.hooks.emit(
                {"step": done, "event": "fp16 overflow: step skipped", "scale": scale},
                f"step {done}/{total}  fp16 gradients overflowed: step skipped, "
                f"loss scale now {scale:g}",
            )
        if warming_up and not t.schedule.warmup_active:
            lr = t.lr_at(done)
            self.hooks.emit(
                {"step": done, "event": "low-lr warm-up ended", "lr": lr},
                f"step {done}/{total}  the low-lr warm-up ended (training error < 80%); "
                f"lr {lr:g} from now on",
            )

    def agree(self, done: int, step: int, *, force: bool) -> bool:
        """Every ``check_every`` steps (and at every boundary or request): all processes agree
        whether to stop and whether a loss went non-finite, which stops the run."""
        hooks = self.hooks
        stop = hooks.stop_requested
        if not (done % self.check_every == 0 or force or stop):
            return stop
        stop, bad = self.where.any(stop, bool(self.nonfinite), device=self.trainer.device)
        if stop and not hooks.stop_requested:  # another process was asked to stop
            hooks.request_stop(signal.SIGTERM)
        if bad:
            where = (
                f"step {done}"
                if done - self.checked_upto == 1
                else f"between steps {self.checked_upto + 1} and {done}"
            )
            raise TrainingStopped(
                f"the training loss became non-finite at {where} "
                f"(lr {self.trainer.lr_at(step):g}); the weights were not saved; "
                f"try a lower --lr or --precision fp32",
                step=done, checkpoint=self.last_saved, exit_code=1,
            )  # fmt: skip
        self.checked_upto = done
        return stop

    def log(self, done: int, step: int) -> None:
        """A training record: the window's mean loss and error, the lr, images/s."""
        t, c, w = self.trainer, self.trainer.config, self.window
        sums = torch.stack([w.loss.double(), w.wrong.double()])
        loss_sum, wrong_sum = self.where.sum(sums).tolist()
        record = {
            "step": done,
            "epoch": self._epoch(done),
            "lr": t.lr_at(step),
            "train_loss": loss_sum / (w.steps * self.where.world),
            "train_error": wrong_sum / (w.steps * c.batch_size),
            "images_per_s": w.steps * c.batch_size / w.seconds(),
        }
        self.hooks.emit(record, log_line(record, self.total))
        self.postfix.update(
            loss=f"{record['train_loss']:.3f}",
            err=f"{100 * record['train_error']:.1f}%",
            img_s=f"{record['images_per_s']:.0f}",
        )
        self.bar.set_postfix(self.postfix, refresh=False)
        w.reset()

    def evaluate(self, done: int) -> None:
        """Every held-out split's error; the plateau schedule may drop the lr."""
        t = self.trainer
        self.last_eval = {"step": done, "epoch": self._epoch(done), **t.evaluate()}
        self.hooks.emit(self.last_eval, log_line(self.last_eval, self.total))
        for key, value in self.last_eval.items():
            if key.endswith("_error") and "top5" not in key:
                self.postfix[key.replace("_error", "")] = f"{100 * value:.2f}%"
        self.bar.set_postfix(self.postfix, refresh=False)
        if t.update_plateau(done, self.last_eval):
            split, lr = t.plateau_split(), t.lr_at(done)
            self.hooks.emit(
                {"step": done, "event": "lr dropped on plateau", "lr": lr},
                f"step {done}/{self.total}  {split} error has not improved for "
                f"{t.config.plateau_patience} evaluations; lr {lr:g} from now on",
            )

    def checkpoint(self, done: int, now: float, *, gather: bool) -> None:
        """Everything to continue after ``done`` (the caller writes it)."""
        self.last_saved = self.hooks.checkpoint(done, self.window.state(self.where, now, gather))

    def stopped(self, done: int) -> None:
        """After a requested stop's checkpoint: end the run with the signal's exit code."""
        signum = self.hooks.requests[0]
        raise TrainingStopped(
            f"stopped by {signal.Signals(signum).name} after step {done} of {self.total}",
            step=done, checkpoint=self.last_saved, exit_code=128 + signum,
        )  # fmt: skip

    def stop_if_weights_nonfinite(self, done: int, *, agree: bool) -> None:
        """Before weights are evaluated or saved: stop (keeping the last good checkpoint) when
        an update made any of them inf or NaN; with ``agree`` every process agrees."""
        t = self.trainer
        bad = t.nonfinite_tensors()
        (anywhere,) = self.where.any(bool(bad), device=t.device) if agree else (bool(bad),)
        if anywhere:
            what = f"{len(bad)} tensors, e.g. {bad[0]}" if bad else "on another process"
            raise TrainingStopped(
                f"the weights became non-finite by step {done} ({what}; lr "
                f"{t.lr_at(max(done - 1, 0)):g}); the weights were not saved; try a lower --lr "
                "or --precision fp32",
                step=done, checkpoint=self.last_saved, exit_code=1,
            )  # fmt: skip

    def _epoch(self, done: int) -> float:
        return round(done / self.trainer.steps_per_epoch, 4)


@contextlib.contextmanager
def catch_signals(hooks: LoopHooks) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a request to stop after the current step; a second one stops
    at once. A signal this process ignores (a launcher's job ignores SIGINT) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def request_stop(signum: int, frame: Any) -> None:
        if hooks.stop_requested:
            raise KeyboardInterrupt
        hooks.request_stop(signum)

    for signum in hooks.stop_signals:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, request_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def log_line(record: dict[str, Any], total: int) -> str:
    """A metrics record as the ``--quiet`` log line."""
    parts = [f"step {record['step']}/{total}", f"epoch {record['epoch']:.2f}"]
    for key, value in record.items():
        if key in ("step", "epoch"):
            continue
        if key.endswith("error"):
            parts.append(f"{key} {100 * value:.2f}%")
        elif key == "images_per_s":
            parts.append(f"{value:.0f} img/s")
        elif isinstance(value, float) and math.isfinite(value):
            parts.append(f"{key} {value:.4g}")
    return "  ".join(parts)
