"""A training run's settings once resolved: every recipe default filled in for the data, the
network and the device, the precision chosen. Frozen, and with no ``None`` or ``"auto"`` left
in it: what the trainer, the loop and config.json's "resolved" record read.

``TrainConfig`` (train/config.py) is what was given and says what each setting means;
``TrainConfig.resolve`` makes this, once, at the start of a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reslearn.precision import Setting


@dataclass(frozen=True)
class RunConfig:
    """The settings a run trains with (the same names as TrainConfig's, each concrete)."""

    data: str
    model: str
    model_options: dict[str, Any]  # as built: --init and a flatten head's map_size included
    recipe: str
    iterations: int
    epochs: float
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    schedule: str
    milestones: list[int]
    lr_gamma: float
    warmup_steps: int
    low_lr_warmup: bool
    seed: int
    val_split: int
    normalization: str
    pad: int
    flip: bool
    image_size: list[int]  # (height, width) of the images the network sees
    precision: str  # bf16 | fp16 | fp32: the choice, never "auto"
    channels_last: bool
    compile: bool
    device: str  # the device the run trains on (cpu, cuda, cuda:1), never "auto"
    log_every: int
    eval_every: int
    checkpoint_every: int
    eval_batch_size: int
    cache_dir: str  # the decoded-image cache folder
    skip_bad_images: bool
    workers: int  # decoding processes (memory) or DataLoader workers (stream)
    init: str | None  # None: random initialisation (an option, not a default left open)
    freeze_backbone: bool
    backbone_lr_scale: float
    loader: str
    accumulate: int
    sync_bn: bool
    crop_size: int
    scale_range: list[int]
    lighting: float
    decode: str  # stream loader: "workers" or "device", never "auto"
    plateau_patience: int
    plateau_threshold: float

    @property
    def setting(self) -> Setting:
        """The precision and layout this run trains in (``reslearn.precision.Setting``)."""
        return Setting(self.precision, self.channels_last)

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (config.json's "resolved" record)."""
        return dataclasses.asdict(self)
