"""The training step: SGD on batches from the on-device data path or the streaming loader, on
one process or many, with its evaluation and state; ``reslearn.train.loop.TrainingLoop`` drives
it (logging, evaluation, checkpoints, graceful stops, exact resumption)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reslearn.data.device_data import EvalSet
from reslearn.data.stream_eval import StreamEval
from reslearn.evaluate import (
    Evaluation,
    evaluate_logits,
    inference_batch,
    predict_logits,
    view_scores,
)
from reslearn.models import ResNet
from reslearn.precision import allow_tf32
from reslearn.train.checkpoint import rng_state, set_rng_state
from reslearn.train.distributed import Distributed, merge_evaluations
from reslearn.train.prepare import TrainData
from reslearn.train.pretrained_init import backbone_and_head
from reslearn.train.run_config import RunConfig
from reslearn.train.schedule import LearningRateSchedule

__all__ = ["TrainData", "Trainer", "check_batch_split"]


def check_batch_split(batch_size: int, processes: int, accumulate: int) -> None:
    """Refuse a global batch that does not split into equal parts per process and micro-step."""
    if batch_size % (processes * accumulate):
        raise ValueError(
            f"--batch-size {batch_size} must be divisible by processes x --accumulate = "
            f"{processes} x {accumulate}"
        )


class Trainer:
    """One network, its optimizer and its training data on one device (one process of a
    torchrun job when ``where`` says so: the network then runs as DistributedDataParallel).

    ``config`` is resolved (a RunConfig: its precision chosen); the data must have been
    normalised into that same setting (``assemble_trainer`` does all of this, as a run does).

    ``train_step(step)`` is the whole hot path: this process's part of the batch (gathered and
    augmented on the device, or streamed from DataLoader workers), forward and backward passes
    in the configured precision (bf16 or fp16 autocast, or fp32; fp16 scales the loss with a
    GradScaler and skips the steps whose gradients overflowed), an SGD step. The batch of any
    step is a pure function of (seed, step), so the loop can start anywhere.
    """

    def __init__(
        self,
        config: RunConfig,
        model: ResNet,
        data: TrainData,
        eval_sets: dict[str, EvalSet | StreamEval] | None = None,
        *,
        where: Distributed | None = None,
    ) -> None:
        if not isinstance(config, RunConfig):
            raise TypeError("Trainer needs a resolved config: TrainConfig(...).resolve(...)")
        if data.setting != config.setting:
            raise ValueError(
                f"the data was normalised for {data.setting.label}, the run trains in "
                f"{config.setting.label}"
            )
        self.where = where or Distributed()
        self.eval_sets = eval_sets or {}
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
        #: The precision and layout the step runs in (the model is put in its layout here).
        self.setting = config.setting
        self.setting.apply(model)
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
        #: The learning rate at each step, the warm-up and plateau state (train/schedule.py).
        self.schedule = LearningRateSchedule(config)

    # -- the hot path -------------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """The learning rate used for ``step`` (0-based): ``schedule.lr_at``."""
        return self.schedule.lr_at(step)

    def micro_batches(self, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This process's augmented micro-batches of ``step`` (one unless --accumulate)."""
        return self.data.micro_batches(
            step,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            parts=self.parts,
            mine=self.mine,
        )

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
                with self.setting.autocast(self.device):
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
        if self.schedule.warmup_active:
            everyone = self.where.sum(wrong.clone())
            self.schedule.observe_training_error(step, everyone.item() / self.config.batch_size)
        return total_loss, wrong

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
                batch_size=inference_batch(c.eval_batch_size, self.device),
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
        return self.schedule.observe_evaluation(done, record[f"{split}_error"])

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (the step is added by the caller)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": rng_state(),
            "precision": {
                "precision": self.config.precision,
                "channels_last": self.config.channels_last,
            },
            **({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
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


def _sgd(model: ResNet, config: RunConfig) -> torch.optim.SGD:
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
