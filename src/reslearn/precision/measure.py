"""Choosing by measuring: the candidates timed in interleaved rounds on a copy of the actual
network, batch and input size, the cache consulted first and filled after."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reslearn.precision.decision_cache import DecisionCache, cache_key, default_cache
from reslearn.precision.setting import Choice, Setting, autocast, input_dtype, pick
from reslearn.precision.support import candidates


def choose(
    settings: list[Setting],
    measure: Callable[[Setting], float],
    *,
    key: str | None = None,
    cache: DecisionCache | None = None,
    budget_s: float = 3.0,
    rounds: tuple[int, int] = (3, 10),
    notes: list[str] | None = None,
) -> Choice:
    """Pick among ``settings``: alone -> forced; all in the cache -> cached; else measured.

    ``measure(setting)`` runs one timed call and returns images/s. Every candidate gets one
    untimed warm-up call, then rounds of one call each, interleaved so that a noisy neighbour
    slows them all alike: at least ``rounds[0]`` (at least one when a round alone exceeds
    ``budget_s``), at most ``rounds[1]``, stopping once ``budget_s`` is spent. A candidate's rate
    is its best call.
    """
    notes = list(notes or [])
    if len(settings) == 1:
        return Choice(settings[0], "forced", notes=notes)
    if cache is not None and key is not None:
        stored = cache.get(key)
        if all(s in stored for s in settings):
            rates = {s: stored[s] for s in settings}
            return Choice(pick(rates), "cached", {s.key: r for s, r in rates.items()}, notes=notes)
    started = time.perf_counter()
    for setting in settings:
        measure(setting)  # warm-up: allocator, oneDNN primitives, cuDNN algorithms
    timings: dict[Setting, list[float]] = {s: [] for s in settings}
    least, most = rounds
    for done in range(1, most + 1):
        for setting in settings:
            timings[setting].append(measure(setting))
        spent = time.perf_counter() - started
        if spent > budget_s and (done >= least or spent * (done + 1) / done > 2 * budget_s):
            break
    seconds = time.perf_counter() - started
    rates = {s: max(found) for s, found in timings.items()}
    spread = _spread(timings)
    if spread > NOISY:  # a busy machine: use the decision, but measure again next time
        notes.append(
            f"precision: the timings varied by up to {spread:.0%} between rounds (is the "
            "machine busy?); the decision is not cached, the next run measures again"
        )
    elif cache is not None and key is not None:
        cache.put(key, rates)
    return Choice(pick(rates), "measured", {s.key: r for s, r in rates.items()}, seconds, notes)


#: Rounds whose two best rates of one candidate differ by more than this are not cached.
NOISY = 0.25


def _spread(timings: dict[Setting, list[float]]) -> float:
    """The largest relative gap between a candidate's two best rounds (0 with one round)."""
    gaps = []
    for found in timings.values():
        if len(found) >= 2:
            best, second = sorted(found, reverse=True)[:2]
            gaps.append((best - second) / best)
    return max(gaps, default=0.0)


def step_timer(
    model: nn.Module,
    *,
    batch_size: int,
    input_shape: tuple[int, int, int],
    device: torch.device,
    train: bool = True,
) -> Callable[[Setting], float]:
    """``measure`` for ``choose``: one forward and backward pass (``train``) or one inference
    pass of a copy of ``model`` on synthetic inputs, returning images/s.

    The copies and the inputs come from their own generator: the model, its optimizer and the
    global RNG are untouched, so a run measured before training is the run it would have been.
    """
    generator = torch.Generator(device=device).manual_seed(0)
    classes = int(getattr(model, "num_classes", 10))
    copies: dict[bool, nn.Module] = {}
    inputs: dict[Setting, torch.Tensor] = {}
    labels = torch.randint(0, classes, (batch_size,), device=device, generator=generator)
    base = torch.randn(batch_size, *input_shape, device=device, generator=generator)

    def measure(setting: Setting) -> float:
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        if setting.channels_last not in copies:
            copies[setting.channels_last] = copy.deepcopy(model).to(device, memory_format=layout)
        net = copies[setting.channels_last]
        if setting not in inputs:
            x = base.to(input_dtype(setting.precision))
            inputs[setting] = x.contiguous(memory_format=layout)
        x = inputs[setting]
        _synchronize(device)
        start = time.perf_counter()
        if train:
            net.train()
            net.zero_grad(set_to_none=True)
            with autocast(device, setting.precision):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), labels)
            if setting.precision == "fp16":
                loss = loss * 1024.0  # as a GradScaler would
            loss.backward()
        else:
            net.eval()
            with torch.inference_mode(), autocast(device, setting.precision):
                net(x)
        _synchronize(device)
        return batch_size / (time.perf_counter() - start)

    return measure


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def choose_for_model(
    model: nn.Module,
    *,
    device: torch.device,
    precision: str,
    channels_last: bool | None,
    batch_size: int,
    input_shape: tuple[int, int, int],
    train: bool = True,
    describe: dict[str, Any] | None = None,
    cache: DecisionCache | None = None,
) -> Choice:
    """Everything ``--precision auto`` does for one network: the candidates this device can run,
    the cache, and the measurement; ``describe`` (the model's name and options) goes into the
    cache key."""
    settings, notes = candidates(device, precision, channels_last)
    key = cache_key(
        device,
        model=describe or type(model).__name__,
        batch=batch_size,
        input=list(input_shape),
        mode="train" if train else "inference",
    )
    measure = step_timer(
        model, batch_size=batch_size, input_shape=input_shape, device=device, train=train
    )
    return choose(
        settings, measure, key=key, cache=cache if cache is not None else default_cache(),
        notes=notes,
    )  # fmt: skip
