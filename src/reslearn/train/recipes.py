"""Training recipes: named bundles of defaults, and the learning-rate schedules they use.

``paper`` is Sec. 4.2 of the paper: batch 128, SGD with momentum 0.9 and weight decay 1e-4, lr
0.1 divided by 10 at 32k and 48k iterations, 64k iterations in all; networks of 110 layers or
more start at lr 0.01 until the training error is below 80% (about 400 iterations). ``fast``
is for people without a GPU: 30 epochs of one-cycle (linear warm-up to lr 0.2 over the first
15% of the steps, then cosine decay to zero), Nesterov momentum, weight decay 5e-4 and label
smoothing 0.1 -- the usual short-schedule tricks, which trade the paper's 164 epochs for 30.
``imagenet-paper`` is Sec. 3.4: batch 256 in total, lr 0.1 divided by 10 whenever the
validation error plateaus (``--schedule step`` gives fixed drops at 25/50/75% of the run instead,
for reproducible schedules), weight decay 1e-4, 60e4 iterations, streamed from the image folder
with scale augmentation, 224 crops, flips, PCA lighting and per-pixel mean subtraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("step", "onecycle", "cosine", "constant", "plateau")


@dataclass(frozen=True)
class Recipe:
    """Defaults a recipe gives to every setting the user did not set."""

    name: str
    summary: str
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    schedule: str
    iterations: int | None  # a fixed iteration budget, or None to use epochs
    epochs: float | None
    milestone_fractions: tuple[float, ...] = ()  # step schedule: where lr drops, as fractions
    warmup_fraction: float = 0.0  # onecycle: fraction of the steps spent warming up
    low_lr_warmup_depth: int | None = None  # paper: lr/10 until train error < 80% from here
    loader: str = "memory"  # "memory": decoded once into memory; "stream": DataLoader workers


RECIPES = {
    "paper": Recipe(
        name="paper",
        summary="He et al. Sec. 4.2: 64k iterations, lr 0.1 /10 at 32k and 48k, wd 1e-4",
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-4,
        label_smoothing=0.0,
        schedule="step",
        iterations=64_000,
        epochs=None,
        milestone_fractions=(0.5, 0.75),
        low_lr_warmup_depth=110,
    ),
    "fast": Recipe(
        name="fast",
        summary="30 epochs one-cycle to lr 0.2, Nesterov, wd 5e-4, label smoothing 0.1",
        batch_size=128,
        lr=0.2,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        label_smoothing=0.1,
        schedule="onecycle",
        iterations=None,
        epochs=30,
        warmup_fraction=0.15,
    ),
    "imagenet-paper": Recipe(
        name="imagenet-paper",
        summary="He et al. Sec. 3.4: b256, lr 0.1 /10 on plateau, wd 1e-4, 60e4 it, streamed",
        batch_size=256,
        lr=0.1,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-4,
        label_smoothing=0.0,
        schedule="plateau",
        iterations=600_000,
        epochs=None,
        milestone_fractions=(0.25, 0.5, 0.75),
        loader="stream",
    ),
}

#: The training error below which the paper's low-lr warm-up of deep networks ends.
LOW_LR_WARMUP_ERROR = 0.8
#: During the paper's warm-up the lr is this fraction of the base lr (0.01 for 0.1).
LOW_LR_WARMUP_FACTOR = 0.1


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name lists the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None


def learning_rate(
    step: int,
    *,
    base_lr: float,
    schedule: str,
    iterations: int,
    milestones: tuple[int, ...] = (),
    gamma: float = 0.1,
    warmup_steps: int = 0,
    plateau_drops: int = 0,
) -> float:
    """The learning rate at ``step`` (0-based) of a schedule of ``iterations`` steps; for
    ``plateau`` the trainer counts the drops it has made (validation error stopped falling)."""
    if schedule == "constant":
        return base_lr
    if schedule == "plateau":
        return base_lr * gamma**plateau_drops
    if schedule == "step":
        return base_lr * gamma ** sum(step >= m for m in milestones)
    if schedule == "onecycle" and step < warmup_steps:
        return base_lr * (0.1 + 0.9 * step / warmup_steps)
    if schedule in ("onecycle", "cosine"):
        start = warmup_steps if schedule == "onecycle" else 0
        progress = (step - start) / max(1, iterations - start)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
