"""The training step and loop: SGD on batches from the on-device data path or the streaming
loader, on one process or many, with periodic logging, evaluation and checkpoints, graceful
stops and exact resumption."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reslearn.data.decode import BadImageError
from reslearn.data.device_data import DeviceData
from reslearn.data.stream import StreamData, StreamEval
from reslearn.evaluate import Evaluation, evaluate_logits, predict_logits, view_scores
from reslearn.models import ResNet
from reslearn.precision import Choice, allow_tf32, autocast
from reslearn.train.checkpoint import rng_state, set_rng_state
from reslearn.train.config import TrainConfig
from reslearn.train.distributed import Distributed, merge_evaluations
from reslearn.train.init import backbone_and_head
from reslearn.train.recipes import LOW_LR_WARMUP_ERROR, LOW_LR_WARMUP_FACTOR, learning_rate
from reslearn.train.speed import choose_run_precision, needs_choice

#: Batches over which the training error must average below 80% to end the paper's warm-up.
_WARMUP_WINDOW = 20


#: Where training batches come from: the in-memory data set, or image files through workers.
TrainData = DeviceData | StreamData


def check_batch_split(batch_size: int, processes: int, accumulate: int) -> None:
    """Refuse a global batch that does not split into equal parts per process and micro-step."""
    if batch_size % (processes * accumulate):
        raise ValueError(
            f"--batch-size {batch_size} must be divisible by processes x --accumulate = "
            f"{processes} x {accumulate}"
        )


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


@dataclass
class EvalSet:
    """Normalised inputs and labels of one evaluation split, on the training device."""

    inputs: torch.Tensor
    labels: torch.Tensor


@dataclass
class LoopHooks:
    """What the loop reports to and asks of its caller (the run: logs, checkpoints)."""

    log: Callable[[dict[str, Any]], None] = lambda record: None
    checkpoint: Callable[[int], str | None] = lambda step: None
    progress: bool = True
    print_logs: bool = False
    stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    _stop: list[int] = field(default_factory=list)

    def emit(self, record: dict[str, Any], line: str) -> None:
        """Log ``record``; in log-line mode also print ``line``."""
        self.log(record)
        if self.print_logs:
            print(line, flush=True)


class Trainer:
    """One network, its optimizer and its training data on one device (one process of a
    torchrun job when ``where`` says so: the network then runs as DistributedDataParallel).

    A config whose precision is ``auto`` (or layout unset) is measured on ``model`` first, as
    ``reslearn train`` does, and ``config`` then holds the choice.

    ``train_step(step)`` is the whole hot path: this process's part of the batch (gathered and
    augmented on the device, or streamed from DataLoader workers), forward and backward passes
    in the configured precision (bf16 or fp16 autocast, or fp32; fp16 scales the loss with a
    GradScaler and skips the steps whose gradients overflowed), an SGD step. The batch of any step is
    a pure function of (seed, step), so the loop can start anywhere.
    """

    #: The logging window (loss and error sums, steps, seconds) as the latest checkpoint saw
    #: it, and the one a resumed run continues: the first record after a resume then averages
    #: the same steps as an uninterrupted run's (see ``fit``).
    log_window: dict[str, Any] | None = None
    resume_log_window: dict[str, Any] | None = None

    def __init__(
        self,
        config: TrainConfig,
        model: ResNet,
        data: TrainData,
        eval_sets: dict[str, EvalSet | StreamEval] | None = None,
        *,
        where: Distributed | None = None,
    ) -> None:
        self.where = where or Distributed()
        self.eval_sets = eval_sets or {}
        #: How the precision and layout were chosen (None when the config gave both).
        self.precision_choice: Choice | None = None
        if needs_choice(config.precision, config.channels_last):  # measure, as a run does
            model.to(data.device)
            config, self.precision_choice = choose_run_precision(
                config, model, data, self.eval_sets, device=data.device,
                input_shape=data.input_shape, where=self.where,
            )  # fmt: skip
        self.config, self.model, self.data = config, model, data
        #: The latest full evaluation of each split (confusion matrix included).
        self.last_evaluations: dict[str, Evaluation] = {}
        self.device = data.device
        self.num_classes = model.num_classes
        self.steps_per_epoch = len(data) // config.batch_size
        # The global batch is split into one part per process and accumulation micro-step;
        # this process computes parts rank * accumulate ... rank * accumulate + accumulate - 1.
        check_batch_split(config.batch_size, self.where.world, config.accumulate)
        self.parts = self.where.world * config.accumulate
        first = self.where.rank * config.accumulate
        self.mine = tuple(range(first, first + config.accumulate))
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.eval_forward = torch.compile(model) if config.compile else model
        wrapped = self.where.wrap(model, self.device)
        self.ddp = wrapped if wrapped is not model else None
        self.forward = torch.compile(wrapped) if config.compile else wrapped
        self.optimizer = _sgd(model, config)
        if config.precision == "fp32":
            allow_tf32(self.device)
        #: fp16 only: scales the loss so small gradients survive, skips overflowed steps.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        self.last_step_skipped = False
        self.warmup_active = bool(config.low_lr_warmup)
        self.warmup_errors: list[float] = []
        self.warmup_ended_at: int | None = None
        #: Steps after which the plateau schedule divided the lr, and its best error so far.
        self.plateau_drops: list[int] = []
        self.plateau_best = math.inf
        self.plateau_waited = 0

    # -- the hot path -------------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """The learning rate used for ``step`` (0-based)."""
        c = self.config
        lr = learning_rate(
            step,
            base_lr=c.lr,
            schedule=c.schedule,
            iterations=c.iterations,
            milestones=tuple(c.milestones),
            gamma=c.lr_gamma,
            warmup_steps=c.warmup_steps,
            plateau_drops=sum(d <= step for d in self.plateau_drops),
        )
        return lr * LOW_LR_WARMUP_FACTOR if self.warmup_active else lr

    def micro_batches(self, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This process's augmented micro-batches of ``step`` (one unless --accumulate)."""
        batches = self.data.micro_batches(
            step,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            parts=self.parts,
            mine=self.mine,
        )
        if not self.config.channels_last:
            batches = [(images.contiguous(), labels) for images, labels in batches]
        return batches

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's images and labels of ``step``, micro-batches joined."""
        batches = self.micro_batches(step)
        if len(batches) == 1:
            return batches[0]
        return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])

    def train_step(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; returns this process's mean loss and its number of wrong predictions.

        With several micro-batches the gradients add up (each loss divided by their number,
        DDP's all-reduce skipped until the last), so a step equals one step on the whole batch.
        """
        batches = self.micro_batches(step)
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total_loss, wrong = None, None
        for i, (images, labels) in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync()
            with sync:
                with autocast(self.device, self.config.precision):
                    logits = self.forward(images)
                loss = F.cross_entropy(
                    logits.float(), labels, label_smoothing=self.config.label_smoothing
                )
                if len(batches) > 1:
                    loss = loss / len(batches)
                self.scaler.scale(loss).backward()  # unscaled unless fp16
            part_wrong = (logits.detach().argmax(1) != labels).sum()
            total_loss = loss.detach() if total_loss is None else total_loss + loss.detach()
            wrong = part_wrong if wrong is None else wrong + part_wrong
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()  # a host sync per step; only fp16 pays it
            self.scaler.step(self.optimizer)  # skipped when a gradient is inf or NaN
            self.scaler.update()
            self.last_step_skipped = self.scaler.get_scale() < scale
        else:
            self.optimizer.step()
        if self.warmup_active:
            everyone = self.where.sum(wrong.clone())
            self._update_warmup(step, everyone.item() / self.config.batch_size)
        return total_loss, wrong

    def _update_warmup(self, step: int, error: float) -> None:
        self.warmup_errors = (self.warmup_errors + [error])[-_WARMUP_WINDOW:]
        full = len(self.warmup_errors) == _WARMUP_WINDOW
        if full and sum(self.warmup_errors) / _WARMUP_WINDOW < LOW_LR_WARMUP_ERROR:
            self.warmup_active, self.warmup_ended_at = False, step + 1

    # -- evaluation and state -----------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """Error and loss on every evaluation split, as ``{"test_error": ..., ...}``; with
        several processes each evaluates a shard and the results are merged."""
        record: dict[str, Any] = {}
        where = self.where
        for name, split in self.eval_sets.items():
            result = merge_evaluations(self._evaluate_shard(split), where, self.device)
            self.last_evaluations[name] = result
            record[f"{name}_error"] = result.top1_error
            record[f"{name}_top5_error"] = result.top5_error
            record[f"{name}_loss"] = result.loss
        self.model.train()
        return record

    def _evaluate_shard(self, split: EvalSet | StreamEval) -> Evaluation:
        """This process's share of a split (images rank, rank + world, ...), evaluated."""
        c, where = self.config, self.where
        if where.rank >= len(split.labels):  # more processes than held-out images
            empty = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
            return Evaluation.from_counts(empty, 0, 0.0)
        if isinstance(split, StreamEval):
            scores, labels = view_scores(
                self.model,
                split.batches(self.device, rank=where.rank, world=where.world),
                precision=c.precision,
                channels_last=c.channels_last,
            )
        else:
            shard = slice(where.rank, None, where.world)
            labels = split.labels[shard]
            scores = predict_logits(
                self.eval_forward,
                split.inputs[shard],
                batch_size=c.eval_batch_size,
                precision=c.precision,
                channels_last=c.channels_last,
            )
        return evaluate_logits(scores, labels, num_classes=self.num_classes)

    def plateau_split(self) -> str | None:
        """The split whose error drives the plateau schedule: val when held out, else test."""
        if self.config.schedule != "plateau":
            return None
        return "val" if "val" in self.eval_sets else next(iter(self.eval_sets), None)

    def update_plateau(self, done: int, record: dict[str, Any]) -> bool:
        """After an evaluation: divide the lr when the monitored error has not improved by
        ``plateau_threshold`` for ``plateau_patience`` evaluations; True when it dropped."""
        split = self.plateau_split()
        if split is None or f"{split}_error" not in record:
            return False
        error = record[f"{split}_error"]
        if error < self.plateau_best - self.config.plateau_threshold:
            self.plateau_best, self.plateau_waited = error, 0
            return False
        self.plateau_waited += 1
        if self.plateau_waited < self.config.plateau_patience:
            return False
        self.plateau_drops.append(done)
        self.plateau_waited = 0
        self.plateau_best = min(self.plateau_best, error)
        return True

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (the step is added by the caller)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": {
                "warmup_active": self.warmup_active,
                "warmup_errors": list(self.warmup_errors),
                "warmup_ended_at": self.warmup_ended_at,
                "plateau_drops": list(self.plateau_drops),
                "plateau_best": self.plateau_best,
                "plateau_waited": self.plateau_waited,
            },
            "rng": rng_state(),
            "precision": {"precision": self.config.precision, "channels_last": self.config.channels_last},
            **({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        schedule = state["schedule"]
        self.warmup_active = schedule["warmup_active"]
        self.warmup_errors = list(schedule["warmup_errors"])
        self.warmup_ended_at = schedule["warmup_ended_at"]
        self.plateau_drops = list(schedule.get("plateau_drops", []))
        self.plateau_best = schedule.get("plateau_best", math.inf)
        self.plateau_waited = schedule.get("plateau_waited", 0)
        set_rng_state(state["rng"])
        if self.scaler.is_enabled() and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def nonfinite_tensors(self) -> list[str]:
        """The names of the parameters and buffers holding an inf or NaN (one host sync)."""
        named = [
            (name, tensor)
            for name, tensor in (*self.model.named_parameters(), *self.model.named_buffers())
            if tensor.is_floating_point()
        ]
        if not named:
            return []
        finite = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist()
        return [name for (name, _), ok in zip(named, finite, strict=True) if not ok]

    def _stop_if_weights_nonfinite(
        self, done: int, lr: float, last_saved: str | None, *, agree: bool = True
    ) -> None:
        """Before weights are evaluated or saved: stop (keeping the last good checkpoint) when
        an update made any of them inf or NaN; with ``agree`` every process agrees."""
        bad = self.nonfinite_tensors()
        (anywhere,) = self.where.any(bool(bad), device=self.device) if agree else (bool(bad),)
        if anywhere:
            what = f"{len(bad)} tensors, e.g. {bad[0]}" if bad else "on another process"
            raise TrainingStopped(
                f"the weights became non-finite by step {done} ({what}; lr {lr:g}); the "
                "weights were not saved; try a lower --lr or --precision fp32",
                step=done,
                checkpoint=last_saved,
                exit_code=1,
            )

    def _window_state(
        self, loss: torch.Tensor, wrong: torch.Tensor, steps: int, seconds: float, gather: bool
    ) -> dict[str, Any]:
        """The logging window for a checkpoint: every process's sums, one row each (with
        ``gather``, a collective; else this process's row alone)."""
        if steps == 0:
            return {"steps": 0}
        gather = gather and self.where.enabled
        rows = torch.zeros((self.where.world if gather else 1, 2), dtype=torch.float64)
        rows = rows.to(self.device)
        rows[self.where.rank if gather else 0] = torch.stack([loss.double(), wrong.double()])
        rows = self.where.sum(rows).cpu() if gather else rows.cpu()  # float64 holds them exactly
        return {"steps": steps, "seconds": seconds, "loss": rows[:, 0], "wrong": rows[:, 1]}

    def _restore_window(self, loss: torch.Tensor, wrong: torch.Tensor) -> tuple[int, float]:
        """Fill the window sums from ``resume_log_window``; returns its (steps, seconds)."""
        saved, self.resume_log_window = self.resume_log_window, None
        if not saved or not saved.get("steps"):
            return 0, 0.0
        rows_loss, rows_wrong = saved["loss"], saved["wrong"]
        if len(rows_loss) == self.where.world:  # the same processes: each takes its own row
            mine_loss, mine_wrong = rows_loss[self.where.rank], rows_wrong[self.where.rank]
        elif self.where.is_main:  # another number of processes: rank 0 carries the sums
            scale = self.where.world / len(rows_loss)  # the loss is averaged over processes
            mine_loss, mine_wrong = rows_loss.sum() * scale, rows_wrong.sum()
        else:
            return int(saved["steps"]), float(saved["seconds"])
        loss.fill_(mine_loss.item())
        wrong.fill_(int(round(mine_wrong.item())))
        return int(saved["steps"]), float(saved["seconds"])

    # -- the loop -----------------------------------------------------------------------------

    def fit(self, start: int, hooks: LoopHooks) -> dict[str, Any]:
        """Train from step ``start`` to the end; returns the last evaluation record.

        Raises TrainingStopped on SIGINT/SIGTERM (after a checkpoint) and on a non-finite loss
        (without writing the bad weights).
        """
        c = self.config
        total = c.iterations
        if start >= total:  # a finished run resumed again: nothing to train, report the end
            self._stop_if_weights_nonfinite(total, self.lr_at(total - 1), None)
            return {
                "step": total,
                "epoch": round(total / self.steps_per_epoch, 4),
                **self.evaluate(),
            }
        # On the CPU a finiteness check per step is free; on a GPU it would stall the queue,
        # so there it happens at each log and checkpoint, naming the window it happened in.
        # With several processes every step agrees on stopping (a signal may reach them at
        # different steps), so the check happens at every step there.
        check_every = 1 if self.device.type == "cpu" or self.where.enabled else c.log_every
        last_eval: dict[str, Any] = {}
        window_loss = torch.zeros((), device=self.device)
        window_wrong = torch.zeros((), dtype=torch.int64, device=self.device)
        nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        window_start, window_steps, checked_upto, last_saved = time.perf_counter(), 0, start, None
        window_paused = 0.0
        if self.resume_log_window:  # resumed mid-window: continue its sums, steps and time
            window_steps, seconds = self._restore_window(window_loss, window_wrong)
            window_start -= seconds

        def keep_window(now: float, gather: bool) -> None:  # what a checkpoint saves of it
            seconds = now - window_start - window_paused
            self.log_window = self._window_state(
                window_loss, window_wrong, window_steps, seconds, gather
            )

        postfix: dict[str, str] = {}
        bar = tqdm(
            total=total,
            initial=start,
            unit="it",
            desc=c.model,
            disable=not hooks.progress,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        with bar, _catch_signals(hooks):
            for step in range(start, total):
                warming_up = self.warmup_active
                try:
                    loss, wrong = self.train_step(step)
                except BadImageError as error:  # nothing of this step was applied yet
                    if step > start:  # this process alone may have failed: no collective
                        keep_window(time.perf_counter(), gather=False)
                    saved = hooks.checkpoint(step) if step > start else last_saved
                    raise TrainingStopped(
                        f"{error}; training stopped before step {step + 1}",
                        step=step,
                        checkpoint=saved,
                        exit_code=1,
                    ) from None
                done = step + 1
                if self.last_step_skipped:
                    scale = self.scaler.get_scale()
                    hooks.emit(
                        {"step": done, "event": "fp16 overflow: step skipped", "scale": scale},
                        f"step {done}/{total}  fp16 gradients overflowed: step skipped, "
                        f"loss scale now {scale:g}",
                    )
                if warming_up and not self.warmup_active:
                    lr = self.lr_at(done)
                    hooks.emit(
                        {"step": done, "event": "low-lr warm-up ended", "lr": lr},
                        f"step {done}/{total}  the low-lr warm-up ended (training error < 80%); "
                        f"lr {lr:g} from now on",
                    )
                window_loss += loss
                window_wrong += wrong
                nonfinite |= ~torch.isfinite(loss)
                window_steps += 1
                bar.update(1)
                boundary = {
                    "log": done % c.log_every == 0 or done == total,
                    "eval": done % c.eval_every == 0 or done == total,
                    "checkpoint": done % c.checkpoint_every == 0 or done == total,
                }
                stop = bool(hooks._stop)  # with several processes: agreed on below, every step
                if done % check_every == 0 or any(boundary.values()) or hooks._stop:
                    stop, bad = self.where.any(
                        bool(hooks._stop), bool(nonfinite), device=self.device
                    )
                    if stop and not hooks._stop:  # another process was asked to stop
                        hooks._stop.append(signal.SIGTERM)
                    if bad:
                        where = (
                            f"step {done}"
                            if done - checked_upto == 1
                            else (f"between steps {checked_upto + 1} and {done}")
                        )
                        raise TrainingStopped(
                            f"the training loss became non-finite at {where} "
                            f"(lr {self.lr_at(step):g}); the weights were not saved; "
                            f"try a lower --lr or --precision fp32",
                            step=done,
                            checkpoint=last_saved,
                            exit_code=1,
                        )
                    checked_upto = done
                if boundary["log"]:
                    elapsed = time.perf_counter() - window_start - window_paused
                    sums = torch.stack([window_loss.double(), window_wrong.double()])
                    loss_sum, wrong_sum = self.where.sum(sums).tolist()
                    record = {
                        "step": done,
                        "epoch": round(done / self.steps_per_epoch, 4),
                        "lr": self.lr_at(step),
                        "train_loss": loss_sum / (window_steps * self.where.world),
                        "train_error": wrong_sum / (window_steps * c.batch_size),
                        "images_per_s": window_steps * c.batch_size / elapsed,
                    }
                    hooks.emit(record, _log_line(record, total))
                    postfix.update(
                        loss=f"{record['train_loss']:.3f}",
                        err=f"{100 * record['train_error']:.1f}%",
                        img_s=f"{record['images_per_s']:.0f}",
                    )
                    bar.set_postfix(postfix, refresh=False)
                    window_loss.zero_()
                    window_wrong.zero_()
                    window_steps, window_paused = 0, 0.0
                    window_start = time.perf_counter()
                paused_at = time.perf_counter()
                # Weights are checked before they are evaluated or saved, by every process alike
                # (a signal that came after the agreement above: by this process alone).
                saving = boundary["checkpoint"] or stop
                agree = bool(boundary["eval"] and self.eval_sets) or saving
                if agree or hooks._stop:
                    self._stop_if_weights_nonfinite(
                        done, self.lr_at(step), last_saved, agree=agree
                    )
                if boundary["eval"] and self.eval_sets:
                    last_eval = {"step": done, "epoch": round(done / self.steps_per_epoch, 4)}
                    last_eval.update(self.evaluate())
                    hooks.emit(last_eval, _log_line(last_eval, total))
                    for key, value in last_eval.items():
                        if key.endswith("_error") and "top5" not in key:
                            postfix[key.replace("_error", "")] = f"{100 * value:.2f}%"
                    bar.set_postfix(postfix, refresh=False)
                    if self.update_plateau(done, last_eval):
                        split, lr = self.plateau_split(), self.lr_at(done)
                        hooks.emit(
                            {"step": done, "event": "lr dropped on plateau", "lr": lr},
                            f"step {done}/{total}  {split} error has not improved for "
                            f"{c.plateau_patience} evaluations; lr {lr:g} from now on",
                        )
                if boundary["checkpoint"] or hooks._stop:
                    keep_window(paused_at, gather=saving)
                    last_saved = hooks.checkpoint(done)
                # evaluation and checkpoint time does not count against training speed
                window_paused += time.perf_counter() - paused_at
                if hooks._stop:
                    name = signal.Signals(hooks._stop[0]).name
                    raise TrainingStopped(
                        f"stopped by {name} after step {done} of {total}",
                        step=done,
                        checkpoint=last_saved,
                        exit_code=128 + hooks._stop[0],
                    )
        return last_eval


def _sgd(model: ResNet, config: TrainConfig) -> torch.optim.SGD:
    """SGD, fused into one kernel where this torch supports it (about 6% of a resnet20 step on
    a 2-core CPU goes to a per-parameter update loop otherwise)."""
    settings = dict(
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.nesterov,
    )
    backbone, head = backbone_and_head(model)
    if config.freeze_backbone:
        for parameter in backbone:
            parameter.requires_grad_(False)
        groups: list[dict[str, Any]] = [{"params": head}]
    elif config.backbone_lr_scale != 1:
        groups = [
            {"params": backbone, "lr_scale": config.backbone_lr_scale},
            {"params": head, "lr_scale": 1.0},
        ]
    else:
        groups = [{"params": list(model.parameters())}]
    if config.precision == "fp16":
        # A GradScaler hands a fused optimizer the overflowed steps too (to skip inside the
        # kernel); torch 2.14's fused SGD then fills its momentum buffers with the inf gradients
        # of the skipped first steps, and every later step writes non-finite weights. The
        # unfused SGD is simply not called on a skipped step.
        return torch.optim.SGD(groups, **settings)
    try:
        return torch.optim.SGD(groups, fused=True, **settings)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.SGD(groups, **settings)


@contextlib.contextmanager
def _catch_signals(hooks: LoopHooks) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a request to stop after the current step."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def request_stop(signum: int, frame: Any) -> None:
        if hooks._stop:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        hooks._stop.append(signum)

    for signum in hooks.stop_signals:
        previous[signum] = signal.signal(signum, request_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _log_line(record: dict[str, Any], total: int) -> str:
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
