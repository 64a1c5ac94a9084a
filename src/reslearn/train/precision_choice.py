"""``--precision auto`` for a training run: the measured choice applied to the run's network and
data, once, before the trainer is built (or the choice a resumed run recorded)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import torch
from torch import nn

from reslearn.choices import PREFERRED_PRECISIONS
from reslearn.data.device_data import DeviceData
from reslearn.precision import Choice, DecisionCache, Setting, choose_for_model, input_dtype


def needs_choice(precision: str, channels_last: bool | None) -> bool:
    """Whether either setting is left to measurement (``auto`` / unset layout)."""
    return precision == "auto" or channels_last is None


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


def cast_data(data: Any, eval_sets: dict[str, Any], precision: str) -> None:
    """Store the training and evaluation inputs in the dtype ``precision`` runs on."""
    dtype = input_dtype(precision)
    if isinstance(data, DeviceData):
        data.cast(dtype)
    else:  # StreamData normalises each batch into its dtype
        data.dtype = dtype
    for split in eval_sets.values():
        if isinstance(getattr(split, "inputs", None), torch.Tensor):
            split.inputs = split.inputs.to(dtype)


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
    data: Any,
    eval_sets: dict[str, Any],
    *,
    device: torch.device,
    input_shape: tuple[int, int, int],
    where: Any,
    recorded: dict[str, Any] | None = None,
) -> tuple[Any, Choice]:
    """The run's concrete precision and layout (measured by rank 0, cached, or recorded), the
    data cast to it, and one line saying what was chosen and why."""
    with where.main_first():  # rank 0 measures and caches; the others find the cache
        choice = decide_precision(
            config, model, device=device, input_shape=input_shape, processes=where.world,
            recorded=recorded,
        )  # fmt: skip
    choice = agree(choice, where, device)
    resolved = dataclasses.replace(
        config, precision=choice.precision, channels_last=choice.channels_last
    )
    cast_data(data, eval_sets, resolved.precision)
    if where.is_main:
        for note in choice.notes:
            print(f"warning: {note}", file=sys.stderr)
        if choice.source != "recorded":  # also with --quiet: it explains the speed
            print(choice.describe(), file=sys.stderr)
    return resolved, choice
