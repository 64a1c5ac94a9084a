"""Shift invariance and equivariance probes (Zhang 2019, "Making convolutional networks
shift-invariant again"), plus small rotations and scale changes.

Invariance asks whether the *prediction* survives a shift, ``F(T x) = F(x)``; equivariance asks
whether a *feature map* moves with the input, ``F(T x) = T' F(x)``, where ``T'`` shifts by the
input shift divided by the layer's cumulative stride. Striding and pooling subsample, so a
stage can only be equivariant to shifts that are multiples of its stride.

Inputs are normalised images. A "zero" shift fills the uncovered border with 0 in normalised
space, i.e. the training mean, which is also what the training augmentation pads with; a
"circular" shift wraps the image around.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from reslearn.choices import SHIFT_MODES
from reslearn.errors import SettingError
from reslearn.models import ResNet

_GROUP = 25  # images that share one random pair of shifts in the consistency measure


def shift_images(x: torch.Tensor, dy: int, dx: int, mode: str = "circular") -> torch.Tensor:
    """Shift (..., H, W) down by ``dy`` and right by ``dx`` pixels (negative: up / left)."""
    if mode not in SHIFT_MODES:
        raise ValueError(f"shift mode must be one of {', '.join(SHIFT_MODES)}; got {mode!r}")
    height, width = x.shape[-2:]
    if abs(dy) >= height or abs(dx) >= width:
        raise ValueError(
            f"a shift of ({dy}, {dx}) pixels does not fit a {height}x{width} image; "
            f"shifts must be smaller than the image"
        )
    if mode == "circular":
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    out = torch.zeros_like(x)
    ys, yd = (
        (slice(0, height - dy), slice(dy, height))
        if dy >= 0
        else (slice(-dy, height), slice(0, height + dy))
    )
    xs, xd = (
        (slice(0, width - dx), slice(dx, width))
        if dx >= 0
        else (slice(-dx, width), slice(0, width + dx))
    )
    out[..., yd, xd] = x[..., ys, xs]
    return out


def _check_images(x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """A probe of no images would report a perfect (0.000) or empty score."""
    if x.dim() != 4 or len(x) == 0:
        raise ValueError(f"the probes need a batch of one or more images (N, C, H, W); got "
                         f"shape {tuple(x.shape)}")  # fmt: skip
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"{len(labels)} labels for {len(x)} images")


def _in_eval_mode(function: Callable) -> Callable:
    """Run ``function(model, ...)`` with the model in eval mode, restoring its mode after."""

    @functools.wraps(function)
    def wrapper(model: ResNet, *args: Any, **kwargs: Any) -> Any:
        was_training = model.training
        model.eval()
        try:
            return function(model, *args, **kwargs)
        finally:
            model.train(was_training)

    return wrapper


@torch.no_grad()
def _predict(model: ResNet, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(b).argmax(1) for b in x.split(batch_size)])


@dataclass
class InvarianceReport:
    """How predictions change under shifts, rotations and rescaling."""

    images: int
    max_shift: int
    accuracy: float  # unshifted
    consistency: dict[str, float]  # mode -> P(same class for two random shifts)
    accuracy_by_shift: dict[str, list[float]]  # mode -> accuracy at shift 0..max_shift
    rotation: dict[str, list[float]] = field(default_factory=dict)  # angles, accuracy, agreement
    scale: dict[str, list[float]] = field(default_factory=dict)  # factors, accuracy, agreement


def _shift_consistency(
    model: ResNet,
    x: torch.Tensor,
    mode: str,
    max_shift: int,
    generator: torch.Generator,
    batch_size: int,
) -> float:
    """P(same class for two random shifts): one random pair of shifts per group of images (all
    images of a group share them), so a large test set samples hundreds of shift pairs at
    batched speed."""
    agree = []
    for group in x.split(_GROUP):
        dy1, dx1, dy2, dx2 = torch.randint(
            -max_shift, max_shift + 1, (4,), generator=generator
        ).tolist()
        a = _predict(model, shift_images(group, dy1, dx1, mode), batch_size)
        b = _predict(model, shift_images(group, dy2, dx2, mode), batch_size)
        agree.append(a == b)
    return torch.cat(agree).float().mean().item()


def _accuracy_by_shift(
    model: ResNet,
    x: torch.Tensor,
    labels: torch.Tensor,
    mode: str,
    max_shift: int,
    batch_size: int,
) -> list[float]:
    """Accuracy at each shift size 0..max_shift, the mean over the four directions."""
    curve = []
    for s in range(max_shift + 1):
        directions = ((s, 0), (-s, 0), (0, s), (0, -s)) if s else ((0, 0),)
        hits = [
            (_predict(model, shift_images(x, dy, dx, mode), batch_size) == labels).float().mean()
            for dy, dx in directions
        ]
        curve.append(torch.stack(hits).mean().item())
    return curve


def _affine_probe(
    model: ResNet,
    x: torch.Tensor,
    labels: torch.Tensor,
    base: torch.Tensor,
    values: Sequence[float],
    kind: str,
    batch_size: int,
) -> dict[str, list[float]]:
    """Accuracy and agreement with the unchanged prediction ``base`` for each rotation angle
    (``kind="rotation"``, degrees) or scale factor (``kind="scale"``)."""
    import torchvision.transforms.v2.functional as TF  # here: torchvision takes 1.5 s to import

    accuracy, agreement = [], []
    for value in values:
        angle, factor = (value, 1.0) if kind == "rotation" else (0.0, value)
        changed = TF.affine(x, angle=angle, translate=[0, 0], scale=factor, shear=[0.0, 0.0],
                            interpolation=TF.InterpolationMode.BILINEAR)  # fmt: skip
        predicted = _predict(model, changed, batch_size)
        accuracy.append((predicted == labels).float().mean().item())
        agreement.append((predicted == base).float().mean().item())
    return {"values": list(map(float, values)), "accuracy": accuracy, "agreement": agreement}


@_in_eval_mode
@torch.no_grad()
def measure_invariance(
    model: ResNet,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    max_shift: int = 8,
    angles: Sequence[float] = (-15, -10, -5, 0, 5, 10, 15),
    scales: Sequence[float] = (0.8, 0.9, 1.0, 1.1, 1.2),
    seed: int = 0,
    batch_size: int = 500,
) -> InvarianceReport:
    """Consistency (two random shifts in [-max_shift, max_shift]^2 per image), accuracy against
    shift size (the mean over the four directions), and the same idea for rotations (degrees)
    and scale factors (agreement: the fraction predicted as without the change)."""
    _check_images(x, labels)
    height, width = x.shape[-2:]
    if max_shift < 1 or max_shift >= min(height, width):
        raise SettingError(
            f"<max_shift> must be between 1 and {min(height, width) - 1} for "
            f"{height}x{width} images; got {max_shift}"
        )
    labels = labels.to(x.device)
    base = _predict(model, x, batch_size)
    generator = torch.Generator().manual_seed(seed)
    consistency, by_shift = {}, {}
    for mode in SHIFT_MODES:
        consistency[mode] = _shift_consistency(model, x, mode, max_shift, generator, batch_size)
        by_shift[mode] = _accuracy_by_shift(model, x, labels, mode, max_shift, batch_size)
    return InvarianceReport(
        images=len(x),
        max_shift=max_shift,
        accuracy=(base == labels).float().mean().item(),
        consistency=consistency,
        accuracy_by_shift=by_shift,
        rotation=_affine_probe(model, x, labels, base, angles, "rotation", batch_size),
        scale=_affine_probe(model, x, labels, base, scales, "scale", batch_size),
    )


def stage_outputs(model: ResNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The stem's and every stage's output, in order (the stem includes the max pool)."""
    intermediates = model.forward_intermediates(x, intermediates_only=True)
    return dict(zip(["stem", *model.stage_names], intermediates))


def shift_feature_map(feature: torch.Tensor, dy: int, dx: int, mode: str) -> torch.Tensor:
    """``shift_images`` for a feature map, where the shift may be as large as the map: a
    zero-filled shift of the whole map leaves nothing."""
    height, width = feature.shape[-2:]
    if mode == "zero" and (abs(dy) >= height or abs(dx) >= width):
        return torch.zeros_like(feature)
    if mode == "circular":
        return torch.roll(feature, shifts=(dy, dx), dims=(-2, -1))
    return shift_images(feature, dy, dx, mode)


def equivariance_error(
    reference: torch.Tensor,
    moved: torch.Tensor,
    dy: int,
    dx: int,
    *,
    stride: int,
    mode: str = "circular",
    per_image: bool = False,
) -> torch.Tensor:
    """``||moved - T' reference|| / ||reference||``: ``moved`` is a stage's output for the input
    shifted by (dy, dx), ``reference`` the output for the unshifted input, and ``T'`` shifts the
    feature map by the input shift divided by the stage's ``stride``, rounded to the nearest
    integer, with the same border ``mode``. One number over the batch, or one per image
    (``per_image``; ``reference`` may then hold one image for all of ``moved``)."""
    expected = expected_shift(reference, dy, dx, stride=stride, mode=mode)
    if not per_image:
        return (moved - expected).norm() / reference.norm().clamp_min(1e-12)
    return relative_error(moved, expected, reference)


def expected_shift(reference: torch.Tensor, dy: int, dx: int, *, stride: int, mode: str):
    """``T' reference``: a stage's output for the unshifted input moved as it would move under an
    input shift of (dy, dx), by the shift divided by the stage's ``stride``, rounded."""
    return shift_feature_map(reference, round(dy / stride), round(dx / stride), mode)


def relative_error(moved: torch.Tensor, expected: torch.Tensor, reference: torch.Tensor):
    """Per image, ``||moved - expected|| / ||reference||`` (``reference`` may hold one image
    for all): the equivariance error once the expected shifted maps are known."""
    difference = (moved - expected).flatten(1).norm(dim=1)
    return difference / reference.flatten(1).norm(dim=1).clamp_min(1e-12)


@_in_eval_mode
@torch.no_grad()
def measure_equivariance(
    model: ResNet, x: torch.Tensor, shifts: Sequence[int] = (1, 2, 3, 4, 8)
) -> dict[str, dict]:
    """Per stage: its cumulative stride and, for each horizontal+vertical circular shift s of
    the input, ``equivariance_error`` over all images (``||F(T_s x) - T'_{s/r} F(x)|| /
    ||F(x)||``, r: the stage's stride). Exactly 0 would be perfect equivariance; zero padding at
    the borders keeps even stride-1 layers slightly above it."""
    _check_images(x)
    if not shifts or min(shifts) < 1:
        raise ValueError(f"shifts must be one or more integers >= 1; got {list(shifts)}")
    height = x.shape[-2]
    reference = stage_outputs(model, x)
    result = {
        name: {"stride": height // feature.shape[-2], "shifts": list(shifts), "error": []}
        for name, feature in reference.items()
    }
    for s in shifts:
        moved = stage_outputs(model, shift_images(x, s, s, "circular"))
        for name, feature in reference.items():
            error = equivariance_error(feature, moved[name], s, s, stride=result[name]["stride"])
            result[name]["error"].append(error.item())
    return result
