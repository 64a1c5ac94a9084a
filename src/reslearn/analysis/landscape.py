"""The loss landscape around trained weights (Li, Xu, Taylor, Studer and Goldstein 2018,
"Visualizing the loss landscape of neural nets"): random directions normalised filter by filter,
the network moved along them, and its loss and accuracy at each point.

A direction holds one tensor per parameter. Each filter of a weight with two or more dimensions
(one output channel of a convolution, one row of a linear layer) is drawn from a standard normal
and scaled to that filter's Frobenius norm in the weights, so that a step of 1 moves every filter
by as much as it is long, whatever the scale BN lets it have. BN parameters and biases (one
dimension) get zero, as in the paper's "ignore biasbn". The network runs in eval mode: BN uses
the running statistics it was trained with, and they are never updated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from reslearn.data.sampling import derive_seed
from reslearn.evaluate.inference import inference_batch, predict_logits

#: A direction in weight space: a tensor shaped like each parameter, by parameter name.
Direction = dict[str, torch.Tensor]
#: A point of the landscape: one coefficient per direction.
Point = tuple[float, ...]
#: The loss of a batch of outputs against its targets, averaged over the batch.
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> Direction:
    """A random direction with every filter scaled to its weight filter's norm, zero for every
    parameter of one dimension (BN and biases). Drawn in float64 on the CPU from ``generator``
    (the same on every device), returned on each parameter's device and dtype."""
    direction = {}
    for name, weight in model.named_parameters():
        if weight.dim() <= 1:
            direction[name] = torch.zeros_like(weight)
            continue
        drawn = torch.randn(weight.shape, generator=generator, dtype=torch.float64).flatten(1)
        norms = weight.detach().double().cpu().flatten(1).norm(dim=1, keepdim=True)
        scaled = drawn * (norms / drawn.norm(dim=1, keepdim=True))
        direction[name] = scaled.view(weight.shape).to(weight.device, weight.dtype)
    return direction


def random_directions(model: nn.Module, count: int, seed: int = 0) -> list[Direction]:
    """``count`` filter-normalised directions, a pure function of ``seed`` and the weights."""
    return [
        filter_normalized_direction(
            model, torch.Generator().manual_seed(derive_seed("landscape", seed, k))
        )
        for k in range(count)
    ]


@contextlib.contextmanager
def moved_along(
    model: nn.Module, directions: Sequence[Direction]
) -> Iterator[Callable[[Point], None]]:
    """A function that moves ``model``'s parameters to ``origin + sum(c_k * d_k)`` for a point
    ``(c_1, ...)``; the trained parameters are restored exactly when the block ends."""
    parameters = dict(model.named_parameters())
    origin = {name: p.detach().clone() for name, p in parameters.items()}
    moving = [name for name in parameters if any(d[name].any() for d in directions)]

    def move(point: Point) -> None:
        if len(point) != len(directions):
            raise ValueError(f"a point needs {len(directions)} coefficients; got {point}")
        with torch.no_grad():
            for name in moving:
                value = origin[name].clone()
                for coefficient, direction in zip(point, directions):
                    value.add_(direction[name], alpha=float(coefficient))
                parameters[name].copy_(value)

    try:
        yield move
    finally:
        with torch.no_grad():
            for name, p in parameters.items():
                p.copy_(origin[name])


def loss_and_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: Loss = functional.cross_entropy,
    batch_size: int = 500,
) -> tuple[float, float | None]:
    """The mean ``loss`` of the network's fp32 outputs on normalised ``inputs`` (as inference
    runs it: eval mode, BN folded) and, for int64 class ``targets``, the accuracy (else None).
    A loss that overflows is NaN or inf, not an error."""
    outputs = predict_logits(
        model, inputs, batch_size=inference_batch(batch_size, inputs.device), precision="fp32"
    )
    value = float(loss(outputs, targets))
    if targets.dtype != torch.int64:
        return value, None
    return value, float((outputs.argmax(dim=1) == targets).double().mean())


def landscape(
    model: nn.Module,
    directions: Sequence[Direction],
    points: Iterable[Point],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: Loss = functional.cross_entropy,
    batch_size: int = 500,
) -> Iterator[tuple[Point, float, float | None]]:
    """(point, loss, accuracy) at each point in turn, the network moved there along
    ``directions``; its parameters are restored when the iteration ends or is closed."""
    with moved_along(model, directions) as move:
        for point in points:
            move(point)
            yield (point, *loss_and_accuracy(model, inputs, targets, loss=loss,
                                             batch_size=batch_size))  # fmt: skip


def axis(points: int) -> list[float]:
    """``points`` evenly spaced coefficients on [-1, 1] (both ends included), rounded so that a
    coefficient is the same number wherever it is computed."""
    return [round(float(x), 9) for x in np.linspace(-1.0, 1.0, points)]
