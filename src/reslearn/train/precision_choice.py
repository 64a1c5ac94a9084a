"""``--precision auto`` for a training run: the measured choice for the run's network (or the
choice a resumed run recorded), made once, before the data is normalised and the trainer built
(train/assemble.py applies it)."""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from reslearn.choices import PREFERRED_PRECISIONS
from reslearn.precision import Choice, DecisionCache, Setting, choose_for_model


def decide_precision(
    config: Any,
    model: nn.Module,
    *,
    device: torch.device,
    input_shape: tuple[int, int, int],
    processes: int = 1,
    recorded: dict[str, Any] | None = None,
    cache: DecisionCache | None = None,
) -> Choice:
    """The concrete precision and layout for ``config`` (a TrainConfig), and how they were
    chosen.

    ``recorded`` (a resumed run's earlier choice) wins, so a run keeps its arithmetic; else
    forced flags win; else the candidates are measured on ``model`` with this process's share
    of the batch (``processes`` x ``accumulate`` micro-batches per step).
    """
    if recorded is not None:
        setting = Setting(recorded["precision"], bool(recorded["channels_last"]))
        choice = Choice(setting, "recorded")
    else:
        per_call = max(1, config.batch_size // (processes * config.accumulate))
        choice = choose_for_model(
            model,
            device=device,
            precision=config.precision,
            channels_last=config.channels_last,
            batch_size=per_call,
            input_shape=input_shape,
            describe={"model": config.model, "options": config.model_options},
            cache=cache,
        )
    return choice


_ALL = [Setting(p, cl) for p in PREFERRED_PRECISIONS for cl in (True, False)]


def agree(choice: Choice, where: Any, device: torch.device) -> Choice:
    """Every process of a torchrun job takes rank 0's choice (they measure alike, not always
    identically; different arithmetic would break bit-exact DDP)."""
    if not where.enabled:
        return choice
    index = _ALL.index(choice.setting) if where.is_main else 0
    index = int(where.sum(torch.tensor(index, device=device)).item())
    if _ALL[index] == choice.setting:
        return choice
    return Choice(_ALL[index], "rank 0", notes=choice.notes)


def choose_run_precision(
    config: Any,
    model: nn.Module,
    *,
    device: torch.device,
    input_shape: tuple[int, int, int],
    where: Any,
    recorded: dict[str, Any] | None = None,
) -> Choice:
    """The run's concrete precision and layout (measured by rank 0, cached, or recorded), and
    one line saying what was chosen and why."""
    with where.main_first():  # rank 0 measures and caches; the others find the cache
        choice = decide_precision(
            config, model, device=device, input_shape=input_shape, processes=where.world,
            recorded=recorded,
        )  # fmt: skip
    choice = agree(choice, where, device)
    if where.is_main:
        for note in choice.notes:
            print(f"warning: {note}", file=sys.stderr)
        if choice.source != "recorded":  # also with --quiet: it explains the speed
            print(choice.describe(), file=sys.stderr)
    return choice
