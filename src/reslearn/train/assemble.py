"""A network and its data put together into a trainer, in the one order a run needs: the
precision chosen on the network (measured, cached, forced or recorded), the settings resolved
once into a frozen RunConfig, the data normalised once into the chosen dtype and layout, then the
Trainer. ``reslearn train`` goes through here, and so can a notebook or a benchmark."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reslearn.precision import Choice
from reslearn.train.config import RunConfig, TrainConfig
from reslearn.train.distributed import Distributed
from reslearn.train.precision_choice import choose_run_precision
from reslearn.train.prepare import Prepared
from reslearn.train.trainer import Trainer


def assemble_trainer(
    config: TrainConfig,
    model: nn.Module,
    data: Prepared,
    *,
    device: torch.device,
    where: Distributed | None = None,
    recorded: dict[str, Any] | None = None,
) -> tuple[Trainer, RunConfig, Choice]:
    """The trainer of ``model`` (on ``device``) on ``data`` (``prepare`` or ``from_tensors``)
    with ``config``'s settings, the resolved settings and how the precision was chosen.
    ``recorded``: a resumed run's earlier choice, which wins."""
    where = where or Distributed()
    config = config.with_recipe()
    choice = choose_run_precision(
        config, model, device=device, input_shape=(data.channels, *data.image_size),
        where=where, recorded=recorded,
    )  # fmt: skip
    run = config.resolve(
        data.train_images, setting=choice.setting, image_size=data.image_size, device=str(device)
    )
    data.place(run)
    return Trainer(run, model, data.train, data.eval_sets, where=where), run, choice
